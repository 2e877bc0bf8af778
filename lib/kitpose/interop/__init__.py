"""Other tools' label and prediction formats, through sleap-io (the optional `interop` install group).

- `labels_in`: a DeepLabCut project, a SLEAP .slp or any labels file sleap-io reads -> COCO
  train/val files, images, a metainfo JSON and a ready YAML (`tools/import_labels.py`);
- `predictions_out`: `tools/infer.py --format dlc slp nwb csv` files.

Importing this package needs nothing beyond the core install; its modules import sleap-io when
they run (`require_sleap_io`).
"""

__all__ = ["InteropError", "require_sleap_io"]


class InteropError(ValueError):
    """A labels source or an export that cannot be converted: the message names the file and the reason."""


def require_sleap_io():
    """The sleap_io module, or InteropError saying how to install it."""
    try:
        import sleap_io
    except ImportError as err:
        raise InteropError(f"this needs sleap-io ({err}): make install-interop, or "
                           "pip install -e '.[interop]'") from None
    return sleap_io
