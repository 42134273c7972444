"""Isolated text-normalisation cases for the CLIP tokenizer: each string
exercises ONE rule (one control or whitespace character between, before or
after letters; one CJK, NFC, case or whitespace-collapse rule), so a rule that
breaks cannot hide behind a neighbour (e.g. a lone "\\r" dropped instead of
becoming a space, unseen when "\\n" follows it).

Reference: the transformers slow CLIPTokenizer (no ftfy: BasicTokenizer path),
as tokenizer_golden.jsonl; "ids" are the content ids between bos and the
eos/padding of the 77-id row.  Usage (PYTHONPATH with the reference's
transformers):  python3 gen_norm_cases.py <tokenizer dir> > tokenizer_norm.jsonl
"""
import json
import sys
import unicodedata

from transformers import CLIPTokenizer


def chars():
    # every C0/C1 control but NUL (prompts are C strings), DEL
    for cp in list(range(0x01, 0x20)) + [0x7F] + list(range(0x80, 0xA0)):
        yield cp
    # every Zs, Zl, Zp character
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if unicodedata.category(chr(cp)) in ("Zs", "Zl", "Zp"):
            yield cp
    # format (Cf), private use (Co), unassigned (Cn), the replacement character
    yield from (0xAD, 0x200B, 0x200C, 0x200D, 0x200E, 0x2060, 0xFEFF, 0xE000, 0x0378, 0xFFFD)


def main():
    tok = CLIPTokenizer.from_pretrained(sys.argv[1])
    seen = set()
    cases = []
    for cp in chars():
        if cp in seen:
            continue
        seen.add(cp)
        c = chr(cp)
        for form in ("a{c}b", "{c}ab", "ab{c}", "a{c}{c}b", "{c}"):
            cases.append((f"U+{cp:04X} {unicodedata.category(c)} " + form, form.replace("{c}", c)))
    for rule, text in [
        ("collapse spaces", "a   b"), ("leading/trailing spaces", "  ab  "), ("empty", ""),
        ("CJK alone", "a\u6771b"), ("CJK ext A", "a\u3400b"), ("CJK ext B", "a\U00020000b"),
        ("CJK compat", "a\uf900b"), ("hiragana is not CJK", "a\u3042b"), ("hangul is not CJK", "a\uac00b"),
        ("NFC e+acute", "e\u0301"), ("NFC composed kept", "\u00e9"), ("NFC A+ring", "A\u030a"),
        ("NFC blocked by a mark of the same class", "a\u0310\u0301"),
        ("NFC past a mark of a lower class", "a\u0323\u0302"), ("NFC after canonical reordering", "a\u0302\u0323"),
        ("NFC singleton Angstrom", "\u212b"), ("NFC kelvin", "\u212a"), ("no NFKC ligature", "\ufb01"),
        ("no NFKC fullwidth", "\uff21\uff22"), ("accents kept", "caf\u00e9"), ("lower", "ABC"),
        ("lower sharp s kept", "STRASSE \u00df"), ("lower dotted I", "\u0130x"), ("punct not split", "a,b.c!"),
        ("digits split", "a123b"), ("apostrophe s", "it's"), ("apostrophe ll", "we'll"),
        ("tab alone", "a\tb"), ("lf alone", "a\nb"), ("cr alone", "a\rb"), ("crlf", "a\r\nb"),
    ]:
        cases.append((rule, text))
    for rule, text in cases:
        ids = tok(text, padding="max_length", max_length=77, truncation=True).input_ids
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids[0], list):
            ids = ids[0]
        assert ids[0] == 49406 and len(ids) == 77
        content = ids[1:ids.index(49407)]  # then eos and padding (eos) to 77
        assert all(i == 49407 for i in ids[1 + len(content):])
        print(json.dumps({"rule": rule, "text": text, "ids": content}, ensure_ascii=True))


if __name__ == "__main__":
    main()
