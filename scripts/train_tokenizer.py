"""Trains a LLaMA-style SentencePiece BPE model with the reference `sentencepiece` library.

Used by `datamill recipe` when no tokenizer model is given, and by the tests to make a small
model. Settings follow the LLaMA-1 trainer_spec (BPE, split digits, byte fallback, identity
normalisation, no whitespace trimming, ids unk 0 / bos 1 / eos 2, no pad). When the text
cannot support VOCAB_SIZE pieces the model gets fewer (`hard_vocab_limit=False`).

usage: train_tokenizer.py INPUT_TEXT MODEL_PREFIX VOCAB_SIZE [CHARACTER_COVERAGE]
"""

import sys

import sentencepiece as spm


def main() -> None:
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    text, prefix, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
    coverage = float(sys.argv[4]) if len(sys.argv) == 5 else 0.99995
    spm.SentencePieceTrainer.train(
        input=text,
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=vocab,
        character_coverage=coverage,
        split_digits=True,
        byte_fallback=True,
        allow_whitespace_only_pieces=True,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        max_sentence_length=4192,
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=2,
        # A small sample (samples/, tests) cannot fill a 32k vocabulary: take what it gives.
        hard_vocab_limit=False,
        minloglevel=2,
    )


if __name__ == "__main__":
    main()
