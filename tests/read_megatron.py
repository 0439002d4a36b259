"""Independent reader of Megatron-LM indexed datasets, written from the published layout
(Megatron-Core indexed_dataset.py): checks every document of the given shards against the
reference SentencePiece encoding of the documents' texts.

usage: read_megatron.py MODEL TEXTS_JSONL BOS(0|1) EOS(0|1) PREFIX [PREFIX ...]
TEXTS_JSONL holds one {"text": ...} per line, in packing order across the prefixes.
Prints one JSON object: sequences, documents, tokens, dtype_code, first_tokens, per_shard.
"""

import json
import struct
import sys

import numpy as np
import sentencepiece as spm

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64,
          6: np.float64, 7: np.float32, 8: np.uint16}


def read_index(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:9] == b"MMIDIDX\x00\x00", f"{path}: bad magic {data[:9]!r}"
    (version,) = struct.unpack("<Q", data[9:17])
    assert version == 1, f"{path}: version {version}"
    (code,) = struct.unpack("<B", data[17:18])
    (seqs,) = struct.unpack("<Q", data[18:26])
    (docs,) = struct.unpack("<Q", data[26:34])
    off = 34
    lengths = np.frombuffer(data, dtype=np.int32, count=seqs, offset=off)
    off += lengths.nbytes
    pointers = np.frombuffer(data, dtype=np.int64, count=seqs, offset=off)
    off += pointers.nbytes
    doc_idx = np.frombuffer(data, dtype=np.int64, count=docs, offset=off)
    off += doc_idx.nbytes
    assert off == len(data), f"{path}: {len(data) - off} trailing bytes"
    return code, lengths, pointers, doc_idx


def main():
    model, texts_path, bos, eos = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
    prefixes = sys.argv[5:]
    sp = spm.SentencePieceProcessor(model_file=model)
    with open(texts_path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    next_text = 0
    total_tokens = 0
    total_seqs = 0
    first_tokens = None
    code_seen = None
    per_shard = []
    for prefix in prefixes:
        code, lengths, pointers, doc_idx = read_index(prefix + ".idx")
        dtype = np.dtype(DTYPES[code])
        code_seen = code
        tokens = np.fromfile(prefix + ".bin", dtype=dtype)
        assert tokens.nbytes == int(lengths.sum()) * dtype.itemsize, f"{prefix}: .bin size"
        assert list(doc_idx) == list(range(len(lengths) + 1)), f"{prefix}: document indices"
        for i, (n, p) in enumerate(zip(lengths, pointers)):
            start = int(p) // dtype.itemsize
            got = tokens[start:start + int(n)].tolist()
            want = ([sp.bos_id()] if bos else []) + sp.encode(texts[next_text]) + ([sp.eos_id()] if eos else [])
            if got != want:
                sys.exit(f"{prefix}: document {i} (text {next_text}) differs: {got[:12]} vs {want[:12]}")
            if first_tokens is None:
                first_tokens = got[:8]
            next_text += 1
        total_tokens += int(lengths.sum())
        total_seqs += len(lengths)
        per_shard.append({"prefix": prefix, "sequences": len(lengths), "tokens": int(lengths.sum())})
    if next_text != len(texts):
        sys.exit(f"{len(texts) - next_text} texts were not found in the shards")
    print(json.dumps({"sequences": total_seqs, "documents": next_text, "tokens": total_tokens,
                      "dtype_code": code_seen, "first_tokens": first_tokens, "per_shard": per_shard}))


if __name__ == "__main__":
    main()
