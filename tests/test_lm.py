"""qkvae.lm: extending a Hugging Face causal LM with the image tokens, the sequence layout both
ways, and the logits processor, on a tiny random Llama and an offline tokenizer."""

from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from qkvae import load_image, load_qkvae  # noqa: E402
from qkvae.fsq import implicit_codebook  # noqa: E402
from qkvae.lm import (ImageLayoutProcessor, ImageTokenEmbedding, ImageVocab, LayoutError, extend,  # noqa: E402
                      grid_to_ids, ids_to_grid, ids_to_image, image_to_ids, plug_image_embedding)
from qkvae.model import QKVAEConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = QKVAEConfig()
WORDS = ["<unk>", "<eos>", "a", "cat", "photo", "of"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<eos>")


def tiny_llama(vocab_size=len(WORDS), tie=True):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                                      tie_word_embeddings=tie)
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture
def extended():
    tokenizer, model = tiny_tokenizer(), tiny_llama()
    return tokenizer, model, extend(tokenizer, model)


def random_grid(seed=0):
    return np.random.default_rng(seed).integers(0, CONFIG.codebook_size, (CONFIG.grid_size, CONFIG.grid_size))


def test_extend_places_the_tokens_after_the_text_vocabulary(extended):
    tokenizer, model, vocab = extended
    assert vocab == ImageVocab.after(len(WORDS))
    assert vocab.vocab_size == len(WORDS) + CONFIG.codebook_size + 3 == len(tokenizer)
    assert model.get_input_embeddings().weight.shape[0] == vocab.vocab_size
    assert tokenizer("a cat <img_start>")["input_ids"] == [2, 3, vocab.img_start]
    assert tokenizer.convert_ids_to_tokens([vocab.code_offset + 7, vocab.img_newrow]) == ["<img_00007>", "<img_newrow>"]
    with pytest.raises(ValueError, match="already has the image tokens"):
        extend(tokenizer, model)


def test_extend_initialises_code_rows_as_a_projection_of_the_fsq_vectors(extended):
    _, model, vocab = extended
    weight = model.get_input_embeddings().weight.detach()
    rows = weight[vocab.code_offset:vocab.code_offset + vocab.codebook_size]
    design = torch.cat([implicit_codebook(CONFIG.levels), torch.ones(vocab.codebook_size, 1)], dim=1)
    fit = design @ torch.linalg.lstsq(design, rows).solution
    assert torch.allclose(fit, rows, atol=1e-5)  # exactly linear in the 5-D code
    assert rows.std() == pytest.approx(weight[:vocab.code_offset].std().item(), rel=1e-4)
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_image_token_embedding_is_a_projection_plus_an_optional_residual():
    emb = ImageTokenEmbedding(CONFIG.levels, 16, residual=True)
    codes = torch.tensor([[0, 5, 15359]])
    assert torch.allclose(emb(codes), emb.proj(implicit_codebook(CONFIG.levels)[codes]))  # residual starts at 0
    with torch.no_grad():
        emb.residual.weight[5] = 1.0
    assert torch.allclose(emb(codes)[0, 1], emb.proj(implicit_codebook(CONFIG.levels)[5]) + 1)
    assert torch.allclose(emb.table()[codes[0]], emb(codes)[0])
    assert "codebook" not in emb.state_dict()


def test_plugged_image_embedding_computes_what_the_extended_rows_did(extended):
    _, model, vocab = extended
    ids = torch.from_numpy(grid_to_ids(random_grid(), vocab))[None, :300]
    ids = torch.cat([torch.tensor([[2, 3]]), ids], dim=1)
    before = model(ids).logits
    plug_image_embedding(model, vocab, residual=True)
    after = model(ids).logits
    assert torch.allclose(before, after, atol=1e-4)
    model(ids).logits.sum().backward()
    assert model.get_input_embeddings().image.proj.weight.grad.abs().sum() > 0


def test_ids_round_trip_a_grid():
    vocab = ImageVocab.after(100)
    grid = random_grid()
    ids = grid_to_ids(grid, vocab)
    assert ids.shape == (vocab.sequence_length,) == (2 + CONFIG.grid_size * (CONFIG.grid_size + 1),)
    assert ids[0] == vocab.img_start and ids[-1] == vocab.img_end
    assert ids[CONFIG.grid_size + 1] == vocab.img_newrow
    np.testing.assert_array_equal(ids_to_grid(np.concatenate([[5, 6], ids, [7]]), vocab), grid)  # text around it


@pytest.mark.parametrize("edit, message", [
    (lambda s, v: s[1:], "no <img_start>"),
    (lambda s, v: np.delete(s, 5), "row 0 has 47 ids"),
    (lambda s, v: np.insert(s, 60, v.code_offset), "row 1 has 49 ids"),
    (lambda s, v: np.where(np.arange(len(s)) == 50, 3, s), r"id 3 at row 1, column 0 is not an image code"),
    (lambda s, v: s[:-1], "no <img_end> after the 48 rows"),
    (lambda s, v: s[:1000], "row 20 has 19 ids and no <img_newrow>"),
    (lambda s, v: np.concatenate([s[:99], [v.img_end]]), "<img_end> after 2 rows"),
    (lambda s, v: np.concatenate([s[:-1], s[1:50]]), "where <img_end> belongs: a row too many"),
])
def test_a_malformed_sequence_gets_a_clear_error(edit, message):
    vocab = ImageVocab.after(100)
    with pytest.raises(LayoutError, match=message):
        ids_to_grid(edit(grid_to_ids(random_grid(), vocab), vocab), vocab)


def test_generate_with_the_layout_processor_gives_a_well_formed_image():
    tokenizer, model = tiny_tokenizer(), tiny_llama()
    vocab = extend(tokenizer, model, QKVAEConfig(image_size=16))  # an 8x8 grid keeps generation short
    prompt = torch.tensor([tokenizer("a photo of a cat <img_start>")["input_ids"]])
    out = model.generate(prompt, logits_processor=[ImageLayoutProcessor(vocab)], do_sample=True,
                         max_new_tokens=vocab.sequence_length - 1, pad_token_id=tokenizer.eos_token_id)
    assert ids_to_grid(out[0].numpy(), vocab).shape == (8, 8)
    unguarded = model.generate(prompt, do_sample=True, max_new_tokens=vocab.sequence_length - 1,
                               pad_token_id=tokenizer.eos_token_id)
    with pytest.raises(LayoutError):  # the same random model without the guard breaks the layout
        ids_to_grid(unguarded[0].numpy(), vocab)


def test_image_to_ids_to_image_equals_the_shipped_decode():
    model = load_qkvae(device="cpu")
    vocab = ImageVocab.after(50257, model.config)
    x = load_image(ROOT / "assets" / "examples" / "photo-cat.png")
    ids = image_to_ids(x, model, vocab)
    assert ids.shape == (vocab.sequence_length,) and ids.max() < vocab.vocab_size
    with torch.no_grad():
        expected = model.decode(model.encode(x[None]))[0]
    assert torch.equal(ids_to_image(ids, model, vocab), expected)
