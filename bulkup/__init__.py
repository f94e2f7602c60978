"""bulkup: an asyncio bulk uploader for the Scene7 / Dynamic Media Classic UploadFile servlet."""

__version__ = "0.1.0"

__all__ = ["__version__"]
