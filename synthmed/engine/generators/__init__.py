"""The built-in class-conditional generators (`ddpm`, `acgan`, `dcgan`): fit and sample loops.

Their networks live in `synthmed.models`; they are registered in
`synthmed.default_plugins.generators`. Each follows `synthmed.protocols.ClassConditionalGenerator`
plus the optional extras `synthmed.engine.generation` uses when present (see `base.py`).
"""
