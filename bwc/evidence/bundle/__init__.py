"""Court export bundles (docs/bundle.md): the layout bwc writes, bwc's own checks of a bundle,
the standalone stdlib-only verifier shipped inside every bundle, and the custody report."""
