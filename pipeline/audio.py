"""Audio carried from the input into an output: every audio stream is copied packet for packet when
the output container accepts its codec, and re-encoded only when it must (AAC into WebM becomes
Opus, anything into WAV becomes PCM, PCM into MP4 becomes AAC: the muxer takes it, but browsers and
most players do not).

Packets are written in step with the video (``write_until``), so the output stays interleaved and
nothing is buffered beyond a fraction of a second. Audio is cut to the same time window as the
video and shifted by the same amount, so it stays in sync: a full run copies every packet
(priming samples included) unshifted relative to the video. A partial run cuts decoded audio (PCM,
which stays lossless, and anything re-encoded anyway) to the window's first and last sample; audio
copied compressed keeps the packets that start inside the window, so its start and end match the
video's within one audio frame.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import cast

import av

from birefnet.errors import InputError
from pipeline.media import open_input

log = logging.getLogger("birefnet_video")

# codec to re-encode into when a container refuses the input's codec (by muxer name)
FALLBACK_CODEC = {"webm": "libopus", "ogg": "libopus", "wav": "pcm_s24le", "mp4": "aac", "mov": "aac",
                  "matroska": "aac", "avi": "pcm_s16le", "mxf": "pcm_s24le"}
# codecs a muxer accepts but its players mostly do not (an MP4 with PCM plays in no browser)
UNPLAYABLE = {"mp4": ("pcm_",)}
BACK_TO_BACK = {"wav", "w64"}  # muxers that store samples one after another and drop the timestamps
_EPS = 1e-4
_JITTER_S = 0.04  # a back-to-back track's timestamps may wander this far from its sample count
_TS_NEGATIVE = 0x40000  # AVFMT_TS_NEGATIVE: the muxer can store timestamps below zero (edit lists)


class AudioCarrier:
    """Moves the audio streams of ``source`` into ``output`` from input time ``start_s`` (to the end, or
    to the end ``finish`` gives), re-timed so that ``start_s`` becomes 0."""

    def __init__(self, output: av.container.OutputContainer, source: str, *, start_s: float,
                 trim_start: bool, reencode: bool = False):
        self._input = open_input(source)
        self._output = output
        self.descriptions: list[str] = []
        self.start_s, self._trim_start = start_s, trim_start
        self.end_s: float | None = None
        # muxers without negative timestamps would shift every stream (video too) to fit a priming
        # packet before zero; such packets are dropped instead (less than one audio frame)
        self._negative_ok = bool(output.format.flags & _TS_NEGATIVE)
        self._tracks: dict[int, _Track] = {}
        muxer = output.format.name.split(",")[0]
        for stream in self._input.streams.audio:
            name = stream.codec_context.name
            unplayable = name.startswith(UNPLAYABLE.get(muxer, ()))
            copyable = name in output.supported_codecs and not reencode and not unplayable
            if copyable and trim_start and name.startswith("pcm_"):
                self._add_decoded(stream, output.add_stream(name, rate=stream.codec_context.sample_rate), muxer)
                self.descriptions.append(f"#{stream.index} {name} cut to the sample (lossless)")
                continue
            if copyable:
                out_stream = output.add_stream_from_template(stream)
                self._tracks[stream.index] = _Track(stream, out_stream, None, None)
                self.descriptions.append(f"#{stream.index} {name} copied")
                continue
            target = FALLBACK_CODEC.get(muxer, "aac")
            sample_format = stream.codec_context.format
            if target == "pcm_s24le" and sample_format and sample_format.name.startswith("s16"):
                target = "pcm_s16le"
            rate = stream.codec_context.sample_rate or 48000
            if target == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                rate = 48000
            self._add_decoded(stream, output.add_stream(target, rate=rate), muxer)
            why = (f"{muxer} output" if reencode else f"{muxer} players do not take {name}" if unplayable
                   else f"{muxer} cannot hold {name}")
            self.descriptions.append(f"#{stream.index} {name} re-encoded to {target} ({why})")
            if not reencode:
                log.warning("audio stream #%d: %s; re-encoding to %s", stream.index, why, target)
        if not self._tracks:
            self._input.close()
            return
        if trim_start and start_s > 0:
            self._input.seek(int(max(0.0, start_s - 1.0) * av.time_base), backward=True)
        self._packets = self._input.demux(*[t.stream for t in self._tracks.values()])
        self._pending: av.Packet | None = None
        self._limit_s: float | None = None  # the output time write_until writes up to
        self._done = False

    def _add_decoded(self, stream: av.audio.stream.AudioStream, out_stream, muxer: str) -> None:
        """A track decoded, resampled to what ``out_stream``'s encoder takes, and encoded again."""
        out_stream = cast(av.audio.stream.AudioStream, out_stream)
        out_stream.layout = stream.codec_context.layout.name if stream.codec_context.layout else "stereo"
        stream.codec_context.thread_type = "AUTO"
        formats = out_stream.codec_context.codec.audio_formats
        fmt = formats[0].name if formats else "fltp"
        rate = out_stream.codec_context.sample_rate
        resampler = av.AudioResampler(format=fmt, layout=out_stream.layout.name, rate=rate)
        self._tracks[stream.index] = _Track(stream, out_stream, resampler, rate, muxer in BACK_TO_BACK,
                                            exact=self._trim_start)

    @property
    def has_audio(self) -> bool:
        return bool(self._tracks)

    def write_until(self, out_time_s: float | None) -> None:
        """Write every packet whose output time is before ``out_time_s`` (None: all remaining)."""
        if not self._tracks or self._done:
            return
        self._limit_s = out_time_s
        for track in self._tracks.values():
            self._release(track)
        while True:
            packet = self._pending or self._next_packet()
            self._pending = None
            if packet is None:
                self._flush_encoders()
                return
            if packet.pts is None:
                continue
            t_in = float(packet.pts * packet.time_base)
            if out_time_s is not None and t_in - self.start_s >= out_time_s:
                self._pending = packet
                return
            if self.end_s is not None and t_in >= self.end_s - _EPS:
                continue  # past the window; keep draining so other streams finish too
            early = t_in < self.start_s - _EPS and (self._trim_start or not self._negative_ok)
            track = self._tracks[packet.stream.index]
            if early and not (track.back_to_back or track.exact):  # those are cut to the sample
                continue
            self._write(packet)

    def finish(self, end_s: float | None) -> None:
        """Write the rest of the audio up to input time ``end_s`` (None: keep the window's end)."""
        if end_s is not None:
            self.end_s = end_s
        self.write_until(None)

    def _next_packet(self) -> av.Packet | None:
        try:
            while True:
                packet = next(self._packets)
                if packet.size or packet.pts is not None:
                    return packet
        except StopIteration:
            return None
        except av.error.FFmpegError as exc:
            log.warning("audio read error (%s); the rest of the audio is dropped", exc.strerror or exc)
            return None

    def _write(self, packet: av.Packet) -> None:
        track = self._tracks[packet.stream.index]
        shift = round(self.start_s / packet.time_base)
        if track.resampler is None:
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = track.out_stream
            self._output.mux(packet)
            return
        try:
            frames = track.stream.decode(packet)
        except av.error.FFmpegError:
            log.warning("audio stream #%d: a corrupt packet was skipped", track.stream.index)
            return
        for frame in frames:
            self._encode(track, frame)

    def _encode(self, track: _Track, frame) -> None:
        if frame is not None and frame.pts is not None:
            t_out = float(frame.pts * frame.time_base) - self.start_s
            frame.pts = round(t_out * frame.sample_rate)
            frame.time_base = Fraction(1, frame.sample_rate)
            if track.exact:
                track.held.append(frame)
                self._release(track)
                return
        if frame is None and track.exact:
            self._release(track)
        self._resample_and_encode(track, frame)

    def _release(self, track: _Track) -> None:
        """Encode ``track``'s held frames, cut to the window, once the window's end is known or the video
        has passed them (they are held only while the end is not known and the video has not)."""
        while track.held:
            frame = track.held[0]
            start, stop = int(frame.pts or 0), frame.samples  # held frames all have a pts
            end = self._end_sample(frame.sample_rate)
            if end is not None:
                if not track.back_to_back:  # those are cut where their samples end, not their timestamps
                    stop = end - start
            elif not self._done and self._limit_s is not None and start + stop > self._limit_s * frame.sample_rate:
                return
            track.held.pop(0)
            piece = _slice(frame, -start, stop)
            if piece is not None:
                self._resample_and_encode(track, piece)

    def _end_sample(self, rate: int) -> int | None:
        """The output sample at which the window ends, None while it is not known."""
        return None if self.end_s is None else round((self.end_s - self.start_s) * rate)

    def _resample_and_encode(self, track: _Track, frame) -> None:
        for resampled in track.resampler.resample(frame):
            aligned_frames = _back_to_back(track, resampled, self._end_sample(track.rate)) if track.back_to_back \
                else [resampled]
            for aligned in aligned_frames:
                for out_packet in track.out_stream.encode(aligned):
                    self._output.mux(out_packet)

    def _flush_encoders(self) -> None:
        self._done = True
        for track in self._tracks.values():
            if track.resampler is None:
                continue
            for frame in track.stream.decode(None):
                self._encode(track, frame)
            self._encode(track, None)
            for out_packet in track.out_stream.encode(None):
                self._output.mux(out_packet)

    def close(self) -> None:
        if self._tracks:
            self._input.close()


class _Track:
    __slots__ = ("stream", "out_stream", "resampler", "rate", "back_to_back", "written", "exact", "held")

    def __init__(self, stream, out_stream, resampler, rate, back_to_back: bool = False, exact: bool = False):
        self.stream, self.out_stream, self.resampler, self.rate = stream, out_stream, resampler, rate
        self.back_to_back = back_to_back
        self.written = 0  # samples encoded so far (back-to-back muxers)
        self.exact = exact  # decoded frames cut to the window's first and last sample
        self.held: list[av.AudioFrame] = []  # decoded frames that may reach past a window end not known yet


def _slice(frame: av.AudioFrame, first: int, stop: int) -> av.AudioFrame | None:
    """Samples ``first`` to ``stop`` of ``frame`` (clamped to it) as a frame of their own, None when empty."""
    first, stop = max(first, 0), min(stop, frame.samples)
    if first == 0 and stop == frame.samples:
        return frame
    if stop <= first:
        return None
    channels = 1 if frame.format.is_planar else len(frame.layout.channels)
    samples = frame.to_ndarray()[:, first * channels: stop * channels]
    piece = av.AudioFrame.from_ndarray(samples, format=frame.format.name, layout=frame.layout.name)
    piece.sample_rate, piece.time_base = frame.sample_rate, frame.time_base
    piece.pts = None if frame.pts is None else frame.pts + first
    return piece


def _back_to_back(track: _Track, frame: av.AudioFrame, end: int | None) -> list[av.AudioFrame]:
    """``frame`` made to start where the samples written so far end, for a muxer that ignores timestamps
    (a WAV sidecar): silence first when it starts later, its first samples cut when it starts earlier.
    Sample n then plays at n / rate from the first video frame, as the timestamps said; before this, audio
    starting 67 ms after the picture played 67 ms early against the sequence. After the first frame, only
    gaps and overlaps over ``_JITTER_S`` are mended. Nothing is written past sample ``end`` (a range's last
    one, None: no end), so the file is as long as the frames whatever its timestamps' jitter."""
    start = frame.pts if frame.pts is not None else track.written
    if track.written and abs(start - track.written) <= _JITTER_S * track.rate:
        start = track.written  # timestamps rounded frame by frame (MP3 in MP4): the samples are contiguous
    frames = []
    if start > track.written:
        silence = av.AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=start - track.written)
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        frames.append(silence)
    elif start < track.written:
        piece = _slice(frame, track.written - start, frame.samples)
        if piece is None:
            return []
        frame = piece
    frames.append(frame)
    placed = []
    for whole in frames:
        each = whole if end is None else _slice(whole, 0, end - track.written)
        if each is None:
            break
        each.sample_rate, each.time_base = track.rate, Fraction(1, track.rate)
        each.pts = track.written
        track.written += each.samples
        placed.append(each)
    return placed


def open_audio(output: av.container.OutputContainer, source: str | None, *, start_s: float,
               partial: bool, reencode: bool = False) -> AudioCarrier | None:
    """An ``AudioCarrier`` for ``source``'s audio from input time ``start_s``, or None when it has none or
    cannot be read. A ``partial`` run trims the start; its end is given to ``finish``. ``reencode``
    forces the container's fallback codec (PCM for a WAV sidecar)."""
    if not source:
        return None
    try:
        carrier = AudioCarrier(output, source, start_s=start_s, trim_start=partial, reencode=reencode)
    except InputError as exc:
        log.warning("audio not carried: %s", exc)
        return None
    return carrier if carrier.has_audio else None
