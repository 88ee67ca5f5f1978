"""The package's exceptions: one base, one class per stage (selection, delegates, attach, detach).

Every message names the pod (``namespace/name``) and, where one is at fault, the network, so
it can be shown to a user as it is.
"""

from __future__ import annotations


class MultusError(Exception):
    """Base of this package's errors."""

    def __reduce__(self) -> tuple[object, ...]:
        # picklable (a fork worker sends them back) although their keywords are required
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(
    cls: type[MultusError], args: tuple[object, ...], state: dict[str, object]
) -> MultusError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class SelectionError(MultusError, ValueError):
    """An invalid network selection annotation.

    ``element`` is the 1-based position of the faulty element (None when the fault is in
    the value as a whole), ``field`` the JSON key or text part at fault, ``value`` the bad
    value, ``multus_error`` the error text Multus itself gives for this annotation (what a
    real cluster shows in the pod's events), when it gives one.
    """

    def __init__(
        self,
        message: str,
        *,
        element: int | None = None,
        field: str | None = None,
        value: object = None,
        multus_error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.element = element
        self.field = field
        self.value = value
        self.multus_error = multus_error


class DelegateError(MultusError, ValueError):
    """The delegate list can't be built: bad annotation, missing or bad NAD, ifname clash,
    more than one default-route gateway per family. ``pod`` is ``namespace/name``;
    ``network`` the network at fault, if one is."""

    def __init__(self, message: str, *, pod: str, network: str | None = None) -> None:
        super().__init__(message)
        self.pod = pod
        self.network = network


class AttachError(MultusError):
    """A pod's ADD failed (and what was added was deleted again). The message starts with
    ``namespace/pod:network``; ``cause`` is the underlying error (e.g. the plugin's
    CNIError)."""

    def __init__(
        self, message: str, *, pod: str, network: str, cause: BaseException | None
    ) -> None:
        super().__init__(message)
        self.pod = pod
        self.network = network
        self.cause = cause


class DetachError(MultusError):
    """Some of a pod's DELs failed (all were tried). ``errors`` holds ``(network, error)``
    for each failure, in the order they happened."""

    def __init__(self, message: str, *, pod: str, errors: list[tuple[str, BaseException]]) -> None:
        super().__init__(message)
        self.pod = pod
        self.errors = errors
