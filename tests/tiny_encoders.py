"""Tiny random encoders of nine families, each with a tokenizer trained on the fly (no hub).

``write_encoder(family, folder)`` writes a masked-LM checkpoint of the family (so that the
same folder serves as the classifier's encoder and as ALPS's masked LM) and a fast
tokenizer of the family's scheme: WordPiece (BERT, DistilBERT, ELECTRA, MPNet), byte-level
BPE (RoBERTa, ModernBERT) or Unigram (DeBERTa-v2, XLM-RoBERTa, ALBERT), trained with the
``tokenizers`` library on the tiny datasets' words.
"""

from __future__ import annotations

from pathlib import Path

from tiny import FILLER, WORDS

#: family -> tokenizer scheme
FAMILIES = {
    "bert": "wordpiece", "roberta": "bpe", "distilbert": "wordpiece", "deberta-v2": "unigram", "electra": "wordpiece",
    "xlm-roberta": "unigram", "mpnet": "wordpiece", "albert": "unigram", "modernbert": "bpe",
}
HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS = 32, 2, 2, 64, 80


def _corpus() -> list[str]:
    words = FILLER + [w for group in WORDS.values() for w in group] + ["where", "city", "country", "river", "who", "what"]
    return [" ".join(words[i:] + words[:i]) for i in range(len(words))] * 4


def train_tokenizer(scheme: str):
    """A ``PreTrainedTokenizerFast`` of ``scheme`` trained on the tiny corpus, special tokens as its family has them."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if scheme == "bpe":
        cls, sep, pad, unk, mask = "<s>", "</s>", "<pad>", "<unk>", "<mask>"
        specials = [cls, pad, sep, unk, mask]
        tokenizer = Tokenizer(models.BPE(unk_token=None))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        cls, sep, pad, unk, mask = "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"
        specials = [pad, unk, cls, sep, mask]
        if scheme == "wordpiece":
            tokenizer = Tokenizer(models.WordPiece(unk_token=unk))
            tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
            tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            tokenizer.decoder = decoders.WordPiece()
            trainer = trainers.WordPieceTrainer(vocab_size=120, special_tokens=specials)
        else:
            tokenizer = Tokenizer(models.Unigram())
            tokenizer.normalizer = normalizers.Lowercase()
            tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
            tokenizer.decoder = decoders.Metaspace()
            trainer = trainers.UnigramTrainer(vocab_size=120, special_tokens=specials, unk_token=unk)
    tokenizer.train_from_iterator(_corpus(), trainer)
    ids = {token: tokenizer.token_to_id(token) for token in (cls, sep)}
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B {sep}", special_tokens=list(ids.items()))
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, cls_token=cls, sep_token=sep, pad_token=pad, unk_token=unk, mask_token=mask,
        bos_token=cls, eos_token=sep, model_input_names=["input_ids", "attention_mask"])


def _config(family: str, tokenizer):
    from transformers import AutoConfig

    ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.cls_token_id,
           "eos_token_id": tokenizer.sep_token_id}
    size = {"vocab_size": len(tokenizer), "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE, "max_position_embeddings": POSITIONS}
    if family == "distilbert":
        return AutoConfig.for_model(family, vocab_size=len(tokenizer), dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS,
                                    hidden_dim=INTERMEDIATE, max_position_embeddings=POSITIONS, **ids)
    if family == "albert":
        return AutoConfig.for_model(family, embedding_size=16, **size, **ids)
    if family == "electra":
        return AutoConfig.for_model(family, embedding_size=HIDDEN, **size, **ids)
    if family == "deberta-v2":  # DeBERTa-v3's attention: relative positions, p2c + c2p, shared keys
        return AutoConfig.for_model(family, relative_attention=True, position_buckets=16, max_relative_positions=-1,
                                    pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm", share_att_key=True,
                                    position_biased_input=False, type_vocab_size=0, **size, **ids)
    if family == "modernbert":
        return AutoConfig.for_model(family, cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                                    local_attention=16, **size, **ids)
    return AutoConfig.for_model(family, **size, **ids)


def write_encoder(family: str, folder: Path, seed: int = 1234) -> Path:
    """A random masked-LM checkpoint of ``family`` with its trained tokenizer, in ``folder``."""
    import torch
    from transformers import AutoModelForMaskedLM

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(FAMILIES[family])
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = AutoModelForMaskedLM.from_config(_config(family, tokenizer))
    finally:
        torch.random.set_rng_state(state)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
