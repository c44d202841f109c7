"""Using a trained generator: one handle for every generator (:mod:`gankit.use.generator`),
projection, latent directions and edits, style mixing and animated interpolation; the
commands live in :mod:`gankit.use.cli`."""
