"""Exceptions with messages a user can act on (the CLI prints them as one line)."""


class MACEDeployError(Exception):
    """Base class of every error mace-deploy raises on purpose."""


class ModelFileError(MACEDeployError):
    """A model or artifact file is missing, unreadable, corrupt or of the wrong kind."""


class OutputPathError(MACEDeployError):
    """The artifact cannot be written where the user asked."""


class UnsupportedModelError(MACEDeployError):
    """The mace-torch model uses a component mace-deploy does not convert (named in the message)."""


class UnknownHeadError(MACEDeployError):
    """The requested head is not one of the model's heads."""


class StructureError(MACEDeployError):
    """The atoms cannot be evaluated: unknown element, overlapping atoms, bad cell."""


class SelfCheckError(MACEDeployError):
    """The freshly compiled artifact does not reproduce mace-torch on the compile-time check."""
