"""The generation parameters a cdiffusers PNG carries (shared by the CLI tests; not a test itself)."""
import json
import zlib


def png_params(path):
    """The JSON of a PNG's "parameters" text chunk (tEXt, or iTXt compressed or not); {} when absent."""
    b = open(path, "rb").read()
    i = 8
    while i < len(b):
        n = int.from_bytes(b[i:i + 4], "big")
        t, d = b[i + 4:i + 8], b[i + 8:i + 8 + n]
        if t in (b"tEXt", b"iTXt") and d.startswith(b"parameters\0"):
            r = d[11:]
            if t == b"iTXt":
                comp, r = r[0], r[2:].split(b"\0", 2)[2]
                r = zlib.decompress(r) if comp else r
            return json.loads(r.decode("latin-1" if t == b"tEXt" else "utf-8"))
        i += 12 + n
    return {}
