"""streamclf: a streaming spoken-command classifier."""

from streamclf.models.registration import install_import_hook

__version__ = "0.1.0"

install_import_hook()  # registers the project's model with transformers once transformers is imported
