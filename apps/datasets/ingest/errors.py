class IngestError(Exception):
    """The source cannot become a dataset version. The message is shown to the user as is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
