"""Lepton's Python SDK: a plain HTTP client of the REST API (no server code imported).

import lepton_ai as la
client = la.Client("http://127.0.0.1:8000", token="lep_…")
ds = client.datasets.upload("digits-png", "digits.zip", task="image_classification")
model = client.models.create("digits-cnn", arch={"family": "cnn_small"}, dataset=ds)
model.train(ds, epochs=10).wait(progress=True)
best = model.compress(ds, max_accuracy_drop=1.0).wait().recommended
best.save("digits-int8.safetensors")
print(best.deploy("digits").predict(images))
"""

from lepton_ai.client import Client
from lepton_ai.errors import (
    AuthenticationError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    ExperimentFailed,
    JobFailed,
    LeptonError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    QuotaExceeded,
    ServerError,
    Throttled,
    WaitTimeout,
    WorkFailed,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "ExperimentFailed",
    "JobFailed",
    "LeptonError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "QuotaExceeded",
    "ServerError",
    "Throttled",
    "WaitTimeout",
    "WorkFailed",
]
