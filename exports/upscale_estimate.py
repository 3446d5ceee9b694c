"""How much time AI upscaling adds to a project's framing export: the export panel's estimate.

    estimate(project) -> {seconds, frames, model_megapixels, seconds_per_megapixel,
                          basis, method} or None (no model, no clips, edits it cannot read)

The work: every output frame of the export (the clips' trims, slow-motion segments and
frame rates, as the renderer plans them: ``timeline.plan``) is its crop window run
through the model, cut into the upscaler's tiles (``upscale.model_pixels_per_frame``,
overlaps included). The crop is sampled at up to ``SAMPLES`` frames of each clip.

The speed, in seconds per megapixel of model input, is a measurement, never a constant:

- ``"previous_exports"``: what the upscaler itself timed in the last upscaled exports
  with this model (``job.result["upscale_speed"]``, recorded by the runner on the
  worker that ran them: a GPU worker of the upscale queue, or this process), the newest
  ``RECENT`` summed;
- ``"measured_here"``: before any, one window through the model on this server's CPU
  (``upscale.measured_speed``); an overestimate where GPU workers run the queue.

Everything else an export does (decode, crop, encode) is not counted: with a model it
is small beside the model's time.
"""

from .models import ExportJob

SAMPLES = 12
RECENT = 5


def estimate(project) -> dict | None:
    from .upscale import availability, measured_speed

    info = availability()
    if not info["available"]:
        return None
    work = export_work(project)
    if work is None:
        return None
    frames, model_pixels = work
    recorded = recorded_speed(info["model"]["name"])
    if recorded is not None:
        speed, count, device = recorded
        basis = "previous_exports"
        plural = "s" if count > 1 else ""
        method = (
            f"the speed the model ran at in the last {count} upscaled export{plural} "
            f"({device}), applied to the frames of these clips"
        )
    else:
        speed = measured_speed()
        if speed is None:
            return None
        basis = "measured_here"
        method = (
            "the model's speed on one test window on this server's CPU, applied to the "
            "frames of these clips"
        )
    megapixels = model_pixels / 1e6
    return {
        "seconds": round(speed * megapixels, 1),
        "frames": frames,
        "model_megapixels": round(megapixels, 2),
        "seconds_per_megapixel": round(speed, 4),
        "basis": basis,
        "method": method,
    }


def export_work(project) -> tuple[int, int] | None:
    """``(output frames, model input pixels)`` of the project's framing export as it
    stands; None if it cannot be exported (no clips, edits the renderer refuses)."""
    from . import timeline
    from .errors import RenderError
    from .jobs import ExportRefused, framing_params
    from .pipeline import _crop_path, even_crop
    from .render import FramingSpec
    from .runner import _clip_spec
    from .upscale import model_pixels_per_frame

    try:
        params = framing_params(project, upscale=True)
    except ExportRefused:
        return None
    width, height = params["output_width"], params["output_height"]
    clips = [_clip_spec(clip, "") for clip in params["clips"]]
    try:
        plan = timeline.plan(FramingSpec(clips, width, height))
    except (ValueError, ZeroDivisionError):
        return None
    frames = pixels = 0
    for index, clip in enumerate(clips):
        count = plan.frames_of(index)
        if not count:
            continue
        try:
            path = _crop_path(clip, width / height)
        except RenderError:
            return None
        samples = min(count, SAMPLES)
        picks = [round(k * (count - 1) / max(1, samples - 1)) for k in range(samples)]
        sampled = 0
        for j in picks:
            _, _, w, h = even_crop(path.at(plan.clips[index].source_time(j)), clip.width,
                                   clip.height)  # fmt: skip
            sampled += model_pixels_per_frame(h, w)
        frames += count
        pixels += sampled * count // samples
    return frames, pixels


def recorded_speed(model_name: str) -> tuple[float, int, str] | None:
    """``(seconds per model megapixel, exports, device)`` from the newest upscaled exports
    with this model that ran it; None if none did."""
    seconds = pixels = 0.0
    devices, count = set(), 0
    recent = ExportJob.objects.filter(
        kind=ExportJob.Kind.FRAMING, status=ExportJob.Status.COMPLETE
    ).order_by("-finished_at")
    for result in recent.values_list("result", flat=True)[:200]:
        speed = (result or {}).get("upscale_speed")
        if not speed or speed.get("model") != model_name or not speed.get("model_pixels"):
            continue
        seconds += float(speed["seconds"])
        pixels += float(speed["model_pixels"])
        devices.add(str(speed.get("device", "?")))
        count += 1
        if count == RECENT:
            break
    if not count:
        return None
    return seconds / (pixels / 1e6), count, ", ".join(sorted(devices))
