#!/usr/bin/env python3
"""Reference side of datamill's tokenizer tests and benchmark, using Google's sentencepiece.

  spm_reference.py train TEXT PREFIX VOCAB   train a BPE model with LLaMA's settings -> PREFIX.model
  spm_reference.py encode MODEL LINES OUT    encode each line of LINES (raw bytes, '\\n' removed)
                                             and write its ids, space-separated, one line each
  spm_reference.py decode MODEL IDS OUT      decode each line of ids; texts written as UTF-8 lines
  spm_reference.py speed MODEL LINES         print the encoding speed (MB/s, one thread) and
                                             bytes per token over LINES
  spm_reference.py hf MODEL LINES OUT        load MODEL with Hugging Face's LlamaTokenizer and
                                             write the ids of each UTF-8 line (no BOS/EOS), then
                                             a last line: vocabulary size, BOS, EOS, UNK ids
"""
import sys
import time

import sentencepiece as spm


def train(text, prefix, vocab, threads=2):
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=prefix, model_type="bpe", vocab_size=int(vocab),
        split_digits=True, byte_fallback=True, character_coverage=0.99995,
        allow_whitespace_only_pieces=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", num_threads=int(threads),
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentence_length=4192,
        minloglevel=2)


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def encode(model, lines_path, out_path):
    sp = spm.SentencePieceProcessor(model_file=model)
    with open(out_path, "w") as out:
        for line in read_lines(lines_path):
            out.write(" ".join(map(str, sp.encode(line))) + "\n")


def decode(model, ids_path, out_path):
    sp = spm.SentencePieceProcessor(model_file=model)
    with open(out_path, "wb") as out:
        for line in read_lines(ids_path):
            ids = [int(t) for t in line.split()]
            out.write(sp.decode(ids).encode("utf-8") + b"\n")


def speed(model, lines_path):
    sp = spm.SentencePieceProcessor(model_file=model)
    lines = read_lines(lines_path)
    size = sum(len(l) for l in lines)
    t = time.perf_counter()
    tokens = sum(len(sp.encode(l)) for l in lines)
    secs = time.perf_counter() - t
    print(f"sentencepiece encode: {size / 1e6 / secs:.2f} MB/s (1 thread), "
          f"{size / tokens:.4f} bytes/token, {tokens} tokens")


def hf(model, lines_path, out_path):
    from transformers import LlamaTokenizer  # transformers==4.46.3 in .venv (make setup-python)

    tok = LlamaTokenizer(vocab_file=model, legacy=True)
    with open(out_path, "w") as out:
        for line in read_lines(lines_path):
            ids = tok.encode(line.decode("utf-8"), add_special_tokens=False)
            out.write(" ".join(map(str, ids)) + "\n")
        out.write(f"{tok.vocab_size} {tok.bos_token_id} {tok.eos_token_id} {tok.unk_token_id}\n")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"train": train, "encode": encode, "decode": decode, "speed": speed, "hf": hf}[cmd](*args)
