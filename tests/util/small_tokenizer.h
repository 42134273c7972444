/* A model folder with a smaller CLIP tokenizer, for allocation-failure
 * sweeps that must fail every allocation of loading: the real vocab.json
 * (49408 entries) alone is ~10^5 cJSON allocations. */
#ifndef CDF_TEST_SMALL_TOKENIZER_H
#define CDF_TEST_SMALL_TOKENIZER_H

#include "testutil.h"

/* A fresh temporary folder (tu_rmtree, free) with model's entries `links`
 * (NULL-terminated: files and component folders) symlinked and a tokenizer/
 * folder rewritten: its first merges_kept merges, the vocab ids below 512 +
 * merges_kept (CLIP's vocab order gives exactly the bytes, the bytes with
 * </w> and those merges' results) and the special tokens (ids >= 49406);
 * tokenizer_config.json and special_tokens_map.json copied. */
char *tu_small_tokenizer_copy(const char *model, const char *const *links, int merges_kept);

#endif
