//! Integration tests live in `it/`; this empty library only anchors the package.
