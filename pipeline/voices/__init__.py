"""Voices: dataset building, Orpheus LoRA training and synthesis (library code; no database, no HTTP).

Modules: dataset (build_dataset), orpheus (token layout + SNAC), train (train_voice), synth (registry,
synthesize, encode_audio), default_voice (Piper ONNX, espeak-ng fallback), check (check_voice), schema (tables). Import the submodule you need;
nothing heavy is imported here.
"""
