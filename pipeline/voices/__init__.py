"""Voices: dataset building, Orpheus LoRA training and synthesis (library code; no database, no HTTP).

Modules: dataset (build_dataset), orpheus (token layout + SNAC), train (train_voice), synth (registry,
synthesize), default_voice (Piper ONNX, espeak-ng fallback), check (check_voice). Their tables and SQL are in
pipeline.library.voices, audio encoding in pipeline.media.encode_audio. Import the submodule you need; nothing heavy
is imported here.
"""
