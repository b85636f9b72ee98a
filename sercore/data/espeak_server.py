"""The eSpeak NG server: a small process that synthesises utterances for ``sercore.data.synth``.

eSpeak NG keeps hidden state from one utterance to the next (pitch-flutter phase, noise generator seeded from
the clock, filter memories), which would make the audio depend on the order of synthesis. So this server
initialises the engine once and forks a fresh child for every utterance: each utterance starts from the same
engine state and the same seed, and the audio is reproducible.

Run as ``python -S espeak_server.py LIBRARY DATA_DIR`` (standard library only, so ``-S`` keeps it to a few MB).
Protocol on stdin/stdout, little-endian: a request is ``int32 length`` + ``int32 rate, int32 wordgap, int64 seed``
+ ``voice \\0 text`` (UTF-8); a reply is one kind byte (``R`` ready, ``A`` audio, ``E`` error) + ``int32
length`` + data (``R``: the sample rate as int32; ``A``: int16 samples; ``E``: a message).
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

_RATE, _VOLUME, _WORDGAP = 1, 2, 7  # espeak_PARAMETER values
_SYNCHRONOUS, _POS_CHARACTER, _CHARS_UTF8 = 2, 1, 1


class Server:
    """eSpeak NG through its C API: synchronous mode, a callback collecting the samples of one utterance."""

    def __init__(self, library: str, data_dir: str):
        self.lib = ctypes.CDLL(library)
        self.libc = ctypes.CDLL(None) if os.name == "posix" else None
        self.chunks: list[bytes] = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self._callback = callback_type(self._collect)  # kept alive as long as the server
        self.sample_rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, data_dir.encode(), 0)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events) -> int:
        if wav and n > 0:
            self.chunks.append(ctypes.string_at(wav, 2 * n))
        return 0

    def synth(self, request: bytes) -> tuple[bytes, bytes]:
        """One request → ``(b"A", int16 samples)`` or ``(b"E", message)``."""
        rate, wordgap, seed = struct.unpack("<iiq", request[:16])
        voice, text = request[16:].split(b"\0", 1)
        self.chunks.clear()
        self.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        if self.libc is not None:
            self.libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        if self.lib.espeak_SetVoiceByName(voice) != 0:
            return b"E", b"no voice '" + voice + b"'"
        for param, value in ((_RATE, rate), (_VOLUME, 30), (_WORDGAP, wordgap)):  # low volume: never clips
            self.lib.espeak_SetParameter(param, value, 0)
        err = self.lib.espeak_Synth(text + b"\0", len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        return (b"A", b"".join(self.chunks)) if err == 0 and self.chunks else (b"E", b"espeak_Synth error %d" % err)

    def synth_in_child(self, request: bytes) -> tuple[bytes, bytes]:
        """``synth`` in a forked child, so the engine state seen by the next request is unchanged."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                kind, data = self.synth(request)
                with os.fdopen(w, "wb") as pipe:
                    pipe.write(kind + data)
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            result = pipe.read()
        os.waitpid(pid, 0)
        return (result[:1], result[1:]) if result else (b"E", b"synthesis process crashed")


def reply(out, kind: bytes, data: bytes) -> None:
    """Write one reply frame to ``out`` and flush it."""
    out.write(kind + struct.pack("<i", len(data)) + data)
    out.flush()


def serve(library: str, data_dir: str, inp=None, out=None) -> None:
    """Answer ``R`` with the sample rate, then one reply per request until stdin closes."""
    inp, out = inp or sys.stdin.buffer, out or sys.stdout.buffer
    server = Server(library, data_dir)
    reply(out, b"R", struct.pack("<i", server.sample_rate))
    speak = server.synth_in_child if hasattr(os, "fork") else server.synth
    while len(head := inp.read(4)) == 4:
        reply(out, *speak(inp.read(struct.unpack("<i", head)[0])))


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
