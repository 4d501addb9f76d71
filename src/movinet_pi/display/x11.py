"""What the window asks the X server itself (through libX11, with ctypes): the screen's size,
and telling OpenCV's Qt that its window is mapped.

The size is the X screen the window opens on, so that the picture is scaled to fit it
(:func:`~movinet_pi.display.render.shown_size`).

The nudge works around a fault of the Qt that OpenCV's wheels bundle: on an X server with
no window manager (Xvfb, a bare ``startx``), Qt now and then never handles the MapNotify of
its new window (about 1 window in 10 here, with a plain 20-line OpenCV script as with the
app). It then takes the window for unmapped and never paints it: the window stays black for
the whole run while frames keep coming (issue #29). One synthetic MapNotify sent to the
window once it is viewable makes Qt paint it; when Qt did see the real one, the second
only repaints. With a window manager the fault was not seen (0 of 40).

Nothing here is needed: without libX11 or a display, the size is unknown (the picture is
not fitted) and no nudge is sent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from typing import Any, Callable

_MAP_NOTIFY = 19
_STRUCTURE_NOTIFY_MASK = 1 << 17
_IS_VIEWABLE = 2
_XA_CARDINAL = 6


class _XMapEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                ("event", ctypes.c_ulong), ("window", ctypes.c_ulong),
                ("override_redirect", ctypes.c_int)]


class _XEvent(ctypes.Union):
    _fields_ = [("xmap", _XMapEvent), ("pad", ctypes.c_long * 24)]


class _XWindowAttributes(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int),
                ("height", ctypes.c_int), ("border_width", ctypes.c_int),
                ("depth", ctypes.c_int), ("visual", ctypes.c_void_p),
                ("root", ctypes.c_ulong), ("class_", ctypes.c_int),
                ("bit_gravity", ctypes.c_int), ("win_gravity", ctypes.c_int),
                ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
                ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int),
                ("colormap", ctypes.c_ulong), ("map_installed", ctypes.c_int),
                ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
                ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
                ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p)]


_ErrorHandler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


@_ErrorHandler
def _ignore_errors(display: Any, event: Any) -> int:
    return 0  # (a window gone meanwhile: Xlib's own handler would end the process)


@functools.lru_cache(maxsize=1)
def _libx11() -> Any | None:
    name = ctypes.util.find_library("X11")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    ulong, voidp, intp = ctypes.c_ulong, ctypes.c_void_p, ctypes.c_int
    windows = ctypes.POINTER(ctypes.POINTER(ulong))
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "XOpenDisplay": (voidp, [ctypes.c_char_p]),
        "XCloseDisplay": (intp, [voidp]),
        "XDefaultScreen": (intp, [voidp]),
        "XDisplayWidth": (intp, [voidp, intp]),
        "XDisplayHeight": (intp, [voidp, intp]),
        "XDefaultRootWindow": (ulong, [voidp]),
        "XQueryTree": (intp, [voidp, ulong, ctypes.POINTER(ulong), ctypes.POINTER(ulong),
                              windows, ctypes.POINTER(ctypes.c_uint)]),
        "XFetchName": (intp, [voidp, ulong, ctypes.POINTER(ctypes.c_char_p)]),
        "XFree": (intp, [voidp]),
        "XInternAtom": (ulong, [voidp, ctypes.c_char_p, intp]),
        "XGetWindowProperty": (intp, [voidp, ulong, ulong, ctypes.c_long, ctypes.c_long, intp,
                                      ulong, ctypes.POINTER(ulong), ctypes.POINTER(intp),
                                      ctypes.POINTER(ulong), ctypes.POINTER(ulong),
                                      ctypes.POINTER(voidp)]),
        "XGetWindowAttributes": (intp, [voidp, ulong, ctypes.POINTER(_XWindowAttributes)]),
        "XSendEvent": (intp, [voidp, ulong, intp, ctypes.c_long, ctypes.POINTER(_XEvent)]),
        "XSync": (intp, [voidp, intp]),
        "XSetErrorHandler": (voidp, [voidp]),
    }
    for function, (restype, argtypes) in signatures.items():
        getattr(lib, function).restype = restype
        getattr(lib, function).argtypes = argtypes
    return lib


def _with_display(work: Callable[[Any, Any], Any]) -> Any:
    """``work(lib, display)`` on a connection of its own to ``$DISPLAY`` (X errors ignored
    meanwhile); None when there is no libX11 or no display."""
    lib = _libx11()
    if lib is None or not os.environ.get("DISPLAY"):
        return None
    display = lib.XOpenDisplay(None)
    if not display:
        return None
    previous = lib.XSetErrorHandler(ctypes.cast(_ignore_errors, ctypes.c_void_p))
    try:
        return work(lib, display)
    finally:
        lib.XSync(display, 0)
        lib.XSetErrorHandler(previous)
        lib.XCloseDisplay(display)


def screen_size() -> tuple[int, int] | None:
    """The X screen's width and height in pixels, or None if it cannot be asked."""

    def ask(lib: Any, display: Any) -> tuple[int, int]:
        screen = lib.XDefaultScreen(display)
        return lib.XDisplayWidth(display, screen), lib.XDisplayHeight(display, screen)

    size = _with_display(ask)
    return size if size and min(size) > 0 else None


def _children(lib: Any, display: Any, window: int) -> list[int]:
    root, parent = ctypes.c_ulong(), ctypes.c_ulong()
    children = ctypes.POINTER(ctypes.c_ulong)()
    count = ctypes.c_uint()
    if not lib.XQueryTree(display, window, ctypes.byref(root), ctypes.byref(parent),
                          ctypes.byref(children), ctypes.byref(count)):
        return []
    found = [children[i] for i in range(count.value)]
    if children:
        lib.XFree(children)
    return found


def _name(lib: Any, display: Any, window: int) -> bytes | None:
    name = ctypes.c_char_p()
    if not lib.XFetchName(display, window, ctypes.byref(name)) or name.value is None:
        return None
    value = name.value
    lib.XFree(name)
    return value


def _pid(lib: Any, display: Any, window: int, atom: int) -> int | None:
    kind, form, count, after = ctypes.c_ulong(), ctypes.c_int(), ctypes.c_ulong(), ctypes.c_ulong()
    data = ctypes.c_void_p()
    if lib.XGetWindowProperty(display, window, atom, 0, 1, 0, _XA_CARDINAL, ctypes.byref(kind),
                              ctypes.byref(form), ctypes.byref(count), ctypes.byref(after),
                              ctypes.byref(data)) != 0 or not data.value:
        return None
    try:
        return int(ctypes.cast(data, ctypes.POINTER(ctypes.c_ulong))[0]) if count.value else None
    finally:
        lib.XFree(data)


def own_windows(lib: Any, display: Any, title: str) -> list[int]:
    """This process's windows called ``title`` (its WM_NAME and _NET_WM_PID), anywhere in
    the tree (a window manager reparents them)."""
    atom = lib.XInternAtom(display, b"_NET_WM_PID", 0)
    wanted, pid = title.encode(), os.getpid()
    stack, found = [lib.XDefaultRootWindow(display)], []
    while stack:
        window = stack.pop()
        stack.extend(_children(lib, display, window))
        if _name(lib, display, window) == wanted and _pid(lib, display, window, atom) == pid:
            found.append(window)
    return found


def tell_mapped(title: str) -> int:
    """Send a MapNotify to each of this process's viewable windows called ``title`` (see the
    module's docs); how many got one."""

    def send(lib: Any, display: Any) -> int:
        sent = 0
        for window in own_windows(lib, display, title):
            attributes = _XWindowAttributes()
            if (not lib.XGetWindowAttributes(display, window, ctypes.byref(attributes))
                    or attributes.map_state != _IS_VIEWABLE):
                continue
            event = _XEvent()
            event.xmap.type = _MAP_NOTIFY
            event.xmap.send_event = 1
            event.xmap.display = display
            event.xmap.event = event.xmap.window = window
            sent += bool(lib.XSendEvent(display, window, 0, _STRUCTURE_NOTIFY_MASK,
                                        ctypes.byref(event)))
        return sent

    return _with_display(send) or 0
