"""Tiny randomly initialised checkpoints saved to a folder, loaded by the views like real ones.

``make_tiny_wav2vec2(folder)`` writes a Hugging Face wav2vec 2.0 checkpoint (``save_pretrained``);
``make_tiny_ecapa(folder)`` writes a speechbrain ECAPA-TDNN folder (``hyperparams.yaml`` + ``*.ckpt``) in the
layout of ``speechbrain/spkrec-ecapa-voxceleb``. Both build in well under a second and need no download.
"""

from __future__ import annotations

from pathlib import Path

import torch

# The layout of speechbrain/spkrec-ecapa-voxceleb's hyperparams.yaml, with small channels. The pretrainer
# lists its loadables without paths, so speechbrain looks for ``<source>/<name>.ckpt`` in the folder itself.
_ECAPA_YAML = """\
n_mels: {n_mels}
lin_neurons: {lin_neurons}

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [{c}, {c}, {c}, {c}, {c3}]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 16
    se_channels: 16
    lin_neurons: !ref <lin_neurons>

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: !ref <lin_neurons>
    out_neurons: {n_speakers}

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
"""


def make_tiny_wav2vec2(folder: str | Path, *, hidden: int = 32, layers: int = 2, conv_dim: int = 32,
                       normalize: bool | None = None, seed: int = 0) -> Path:
    """Save a random wav2vec 2.0 (``layers`` transformer layers of width ``hidden``) to ``folder``.

    The convolutional front end keeps the real strides (320 samples per frame). ``normalize`` given writes a
    ``preprocessor_config.json`` with ``do_normalize=normalize`` as real checkpoints have.
    """
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = Path(folder)
    config = Wav2Vec2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                            intermediate_size=2 * hidden, conv_dim=(conv_dim,) * 7, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=4, vocab_size=8)
    torch.manual_seed(seed)
    Wav2Vec2Model(config).eval().save_pretrained(folder)
    if normalize is not None:
        Wav2Vec2FeatureExtractor(do_normalize=normalize, return_attention_mask=False).save_pretrained(folder)
    return folder


_SSL_KINDS = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "wav2vec2-conformer", "whisper")


def make_tiny_ssl(folder: str | Path, kind: str, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a random Hugging Face speech model of ``kind`` (one of ``_SSL_KINDS``) with ``layers`` layers of
    width ``hidden`` to ``folder`` (``save_pretrained``, plus its preprocessor config), as a user's folder."""
    import transformers as tf

    folder = Path(folder)
    if kind == "wav2vec2":
        return make_tiny_wav2vec2(folder, hidden=hidden, layers=layers, normalize=True, seed=seed)
    torch.manual_seed(seed)
    if kind == "whisper":
        config = tf.WhisperConfig(d_model=hidden, encoder_layers=layers, decoder_layers=1, encoder_attention_heads=2,
                                  decoder_attention_heads=2, encoder_ffn_dim=2 * hidden, decoder_ffn_dim=2 * hidden,
                                  vocab_size=16, num_mel_bins=80, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                  decoder_start_token_id=1)
        tf.WhisperModel(config).eval().save_pretrained(folder)
        tf.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
        return folder
    common = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=2 * hidden,
                  conv_dim=(32,) * 7, vocab_size=8, num_conv_pos_embeddings=16)
    config, model = {"hubert": (tf.HubertConfig, tf.HubertModel), "wavlm": (tf.WavLMConfig, tf.WavLMModel),
                     "data2vec-audio": (tf.Data2VecAudioConfig, tf.Data2VecAudioModel),
                     "wav2vec2-conformer": (tf.Wav2Vec2ConformerConfig, tf.Wav2Vec2ConformerModel)}[kind]
    extra = {"num_conv_pos_embedding_groups": 4}
    if kind == "wavlm":
        extra.update(num_buckets=16, max_bucket_distance=32)
    if kind == "data2vec-audio":
        extra = {"num_conv_pos_embeddings": 5}
    model(config(**{**common, **extra})).eval().save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder


def make_tiny_ecapa(folder: str | Path, *, lin_neurons: int = 192, channels: int = 32, n_mels: int = 24,
                    n_speakers: int = 4, seed: int = 0) -> Path:
    """Save a random ECAPA-TDNN speechbrain folder (``hyperparams.yaml`` + checkpoints) to ``folder``."""
    from hyperpyyaml import load_hyperpyyaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = _ECAPA_YAML.format(n_mels=n_mels, lin_neurons=lin_neurons, c=channels, c3=3 * channels,
                              n_speakers=n_speakers)
    (folder / "hyperparams.yaml").write_text(text)
    torch.manual_seed(seed)
    hparams = load_hyperpyyaml(text)
    for name, module in hparams["pretrainer"].loadables.items():
        if isinstance(module, torch.nn.Module) and not name.startswith("mean_var"):
            torch.save(module.state_dict(), folder / f"{name}.ckpt")
    # InputNormalization has its own save format (running statistics); use it.
    hparams["mean_var_norm_emb"]._save(folder / "mean_var_norm_emb.ckpt")
    return folder


def record_pretraining(monkeypatch, module) -> list:
    """Patch ``module.pretrain_pairwise_cached`` to record the ``(train_ids, val_ids)`` of every call (and still
    run it)."""
    calls = []
    real = module.pretrain_pairwise_cached

    def recording(features, train_ids, val_ids, **kw):
        calls.append((list(train_ids), list(val_ids)))
        return real(features, train_ids, val_ids, **kw)

    monkeypatch.setattr(module, "pretrain_pairwise_cached", recording)
    return calls
