"""Every constant of the segmenter, with its unit and why it has its value, and the rule profiles.

The rules read ``tuning.x`` (the same for every background) or ``profile.x`` (one
:class:`Profile` per :class:`BackgroundKind`), so a benchmark can sweep any of them:
``FrameSegmenter(settings, detector, tuning=dataclasses.replace(TUNING, hiss_flatness=0.25))``.
What each rule was added for, with the measurements, is in ``docs/segmentation-history.md``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class BackgroundKind(enum.Enum):
    QUIET = "quiet"
    """Little or no noise: the floor lies under ``Tuning.quiet_floor_dbfs``."""
    STATIONARY = "stationary"
    """Noise whose energy is not mostly in the voiced band: a fan, a tap, traffic, hiss."""
    MURMUR = "murmur"
    """Babble or a TV: most of the background's energy is in the voiced band, as a voice's is."""


@dataclass(frozen=True)
class Profile:
    """How the rules read over one kind of background."""

    hold_needs_strong: bool  # a voiced frame holds a confirmed utterance only when well above the noise
    hold_within_peak_db: float  # dB: ...and within this of the utterance's loudest frame (a swell is lower)
    any_clear_hiss_holds: bool  # any clear hiss holds, not only one running on from a consonant
    min_voice_probability: float  # silero-vad's probability one candidate frame must reach (swells don't)
    weak_lead_ms: float  # ms of weak speech kept before the first clear frame (inf: all of it)
    learn_when_busy: bool  # nearly all speech for seconds: every frame teaches the spectrum (drifting murmur)


STEADY_PROFILE = Profile(False, math.inf, False, 0.0, math.inf, False)
MURMUR_PROFILE = Profile(True, 12.0, True, 0.6, 20.0, True)
PROFILES = {
    BackgroundKind.QUIET: STEADY_PROFILE,
    BackgroundKind.STATIONARY: STEADY_PROFILE,
    BackgroundKind.MURMUR: MURMUR_PROFILE,
}


@dataclass(frozen=True)
class Tuning:
    # --- what a frame is ---------------------------------------------------------------------------
    voiced_ratio: float = 0.5  # share of energy in the voiced band that makes speech voiced
    voiced_raise_db: float = 10.0  # dB: or its voiced band this far above the background's ("yes")...
    voiced_min_ratio: float = 0.2  # ...while still holding this share (a clink's does not)
    hiss_flatness: float = 0.3  # 0..1: high band at least this flat is a hiss ("s"), lower rings (china)
    strong_frames: int = 2  # voiced frames well above the noise that confirm an utterance
    # --- timing of the states ------------------------------------------------------------------------
    gap_ms: float = 100.0  # ms: after a confirmed utterance's speech, a pause this long separates sounds
    restart_gap_ms: float = 40.0  # ms: a pause this long in a candidate restarts it at the next sound
    closure_ms: float = 120.0  # ms: ...except after a clear hiss, up to a stop's closure ("s-top")
    unvoiced_hold_ms: float = 60.0  # ms: unvoiced sound this soon after the voice holds (a final "s", "t")
    unvoiced_hangover_ms: float = 120.0  # ms: hangover after a consonant (less than after a vowel)
    sound_goes_on_db: float = 12.0  # dB: a hangover all this close to the peak is sound going on (a fan)
    murmur_check_linger_s: float = 10.0  # s: silero-vad keeps its context this long after murmur was heard
    # --- edges ---------------------------------------------------------------------------------------------
    reach_ms: float = 100.0  # ms: edges move out over at most this much audible sound (soft consonants)
    masked_depth_db: float = 40.0  # dB: speech edges fade over this; what lies under the noise is padded
    masked_preroll_max_ms: float = 60.0  # ms: most extra pre-roll, for an utterance barely above the noise
    masked_tail_max_ms: float = 100.0  # ms: most extra tail, likewise (never beyond the audio held)
    # --- spectrum --------------------------------------------------------------------------------------
    voiced_band_hz: tuple[float, float] = (80.0, 1500.0)  # Hz: where voiced speech has most of its energy
    hiss_band_hz: float = 1500.0  # Hz: the band whose flatness tells a hiss from ringing starts here
    hiss_parts: int = 8  # sub-bands flatness is taken in (about 400 Hz each at 16 kHz)
    bands: int = 20  # mel-spaced bands the background spectrum is learned in
    band_range_hz: tuple[float, float] = (100.0, 8000.0)  # Hz: range of those bands
    top_bands: int = 6  # a frame's excess is the mean of its this many most raised bands
    high_pass_hz: float = 100.0  # Hz: a high-pass takes out DC offset and mains hum (voice lies above)
    high_pass_order: int = 4  # Butterworth order: 50 Hz hum down 24 dB, 60 Hz 18 dB
    # --- levels ------------------------------------------------------------------------------------------
    silence_dbfs: float = -100.0  # dBFS: floor of the energy scale (digital silence)
    no_signal_dbfs: float = -90.0  # dBFS: frames this quiet teach nothing once a background was heard
    absolute_min_dbfs: float = -88.0  # dBFS: nothing quieter is speech (a -50 dBFS talker's soft "w")
    quiet_floor_dbfs: float = -65.0  # dBFS: a background whose floor is under this is quiet
    audible_margin_db: float = 4.0  # dB: sound next to speech this far above the background is its edge
    noise_peak_margin_db: float = 1.0  # dB: speech must clear a noise peak by this much
    level_strong_db: float = 3.0  # dB over the level peak's margin of the frames that confirm
    level_babble_db: float = 7.0  # dB added to that over fully voice-like background (babble)
    spectrum_strong_db: float = 1.0  # dB over the spectrum peak's margin of the frames that confirm
    spectrum_babble_db: float = 2.0  # dB added to that over fully voice-like background
    strong_min_above_db: float = 3.0  # dB over the floor a frame strong by spectrum alone needs (recolouring)
    # --- the background's floor, peaks and spectrum ------------------------------------------------------
    floor_fall: float = 0.3  # share of the way to a quieter frame the floor falls per frame
    floor_rise_db_per_s: float = 2.0  # dB/s: the floor rises this slowly through louder frames
    warm_up_s: float = 1.5  # s: at stream start the floor rises faster, to find the noise...
    warm_up_rise_db_per_s: float = 20.0  # dB/s: ...at this rate
    warm_up_step_factor: float = 3.0  # the noise-peak trackers' steps are this much larger meanwhile
    cold_start_s: float = 0.5  # s: before any background was heard, every frame teaches it...
    cold_start_db: float = 10.0  # dB: ...and the margins are raised this much, shrinking to 0
    min_window_s: float = 3.0  # s: the floor jumps up to the quietest frame of this long when above it
    min_window_blocks: int = 6  # blocks that window's minimum is kept in
    steady_window_s: float = 2.0  # s: a sound loud and steady this long is a new background (a fan)...
    steady_range_db: float = 8.0  # dB: ...when its levels stay within this...
    steady_percentiles: tuple[float, float] = (10.0, 90.0)  # ...between these percentiles
    noise_quantile: float = 0.98  # the noise peaks track this quantile of non-speech frames
    noise_peak_step_db: float = 0.5  # dB: step of the quantile trackers
    noise_peak_max_db: float = 30.0  # dB: values are clipped to 0..this before the quantile step
    voiced_share_rate: float = 0.01  # per frame: running mean rate of the background's voiced share
    spectrum_time_s: float = 2.0  # s: time constant of the background spectrum's running mean
    busy_window_s: float = 2.0  # s: over murmur, when this long was nearly all speech...
    busy_share: float = 0.85  # ...at least this share of it, every frame teaches the spectrum
    murmur_from_share: float = 0.5  # voiced share of the background where voice-likeness starts...
    murmur_share_span: float = 0.4  # ...reaching 1 this much higher (babble is about 0.9)
    murmur_likeness: float = 0.5  # voice-likeness from which the background is murmur
    # --- automatic gain ----------------------------------------------------------------------------------
    target_dbfs: float = -22.0  # dBFS: sound standing out of the noise is brought to this
    agc_floor_offset_db: float = 15.0  # dB: frames nearer the floor keep their distance under the target
    min_gain_db: float = -12.0  # dB: the gain stays within these
    max_gain_db: float = 40.0  # dB
    gain_release_db_per_s: float = 20.0  # dB/s: the loudest recent frame is forgotten this fast
    # --- a room's echo --------------------------------------------------------------------------------
    echo_decay_db_per_s: float = 75.0  # dB/s: envelopes fall this fast (RT60 0.8 s) while the room is unknown
    echo_room_factor: float = 0.6  # with the room's rate measured, they fall this much slower than it...
    echo_slowest_db_per_s: float = 40.0  # dB/s: ...but never slower than this (RT60 1.5 s)
    echo_tolerance_db: float = 3.0  # dB: a band must rise this much over its envelope to be new sound
    echo_top_bands: int = 3  # the mean rise of this many bands decides
    echo_run_frames: int = 2  # explained frames in a row that make the last one echo
    # --- the room's decay rate --------------------------------------------------------------------------
    decay_peak_db: float = 20.0  # dB over the floor a fall is measured from
    decay_skip_db: float = 8.0  # dB under the peak where the fitted part starts (the direct sound's stop)...
    decay_depth_db: float = 35.0  # dB: ...and where it ends
    decay_floor_gap_db: float = 6.0  # dB: a fall ends this close to the floor
    decay_rise_db: float = 3.0  # dB: a fall ends when the level rises this much over its lowest frame
    decay_min_points: int = 4  # frames a measured fall's fitted part holds at least...
    decay_min_span_db: float = 18.0  # dB: ...falling at least this much...
    decay_max_scatter_db: float = 2.0  # dB: ...its levels this close to the line (a room decays evenly)
    decay_kept: int = 9  # the room's rate comes from this many last falls...
    decay_min_measured: int = 2  # ...once there are this many...
    decay_quantile: float = 75.0  # ...as this percentile of their rates


TUNING = Tuning()
"""The values the segmenter runs with."""
