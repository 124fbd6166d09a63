"""The error every profile reader raises."""


class ProfileError(ValueError):
    """A profile name, file or model config that cannot be used; the message names what is wrong."""
