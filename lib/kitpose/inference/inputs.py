"""What `tools/infer.py --input` accepts: an image, a folder, a glob pattern or a video.

- a video file (extension in VIDEO_EXTENSIONS): its frames, in order;
- a folder: the image files directly in it (extension in IMAGE_EXTENSIONS), sorted by name;
- a pattern with `*`, `?` or `[` (quote it in the shell): every matching file, sorted; `**` recurses;
- any other path: that one image.

`frame_range` (start, stop, step) keeps those frame numbers of a video, or those positions of an
image list, with their numbers: frame 900 of a video stays frame 900 in the results.

Images are read with OpenCV as BGR uint8. A file that cannot be decoded (or a video that
cannot be opened) becomes a `Frame` with `image=None` and the reason in `error`, so the
caller can report it by name, skip it and count it. A video that ends before the frame count
its header announces (a truncated or damaged file) says so through `InputSource.missing_frames`.
"""
import glob
import os
from dataclasses import dataclass

import cv2

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Frame", "InputError", "InputSource", "open_input"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
GLOB_CHARACTERS = "*?["


class InputError(ValueError):
    """--frames selects nothing of the input."""


@dataclass
class Frame:
    """One image to run on. `index`: position among the inputs (the frame number for a video)."""
    name: str
    index: int
    image: object = None   # BGR uint8 [H,W,3], or None when unreadable
    error: str = ""


@dataclass
class InputSource:
    """The resolved --input: `kind` 'images' or 'video', `paths` the files, `total` the expected frame count
    (frames a video's header announces; 0 when it does not say); `frames_decoded`: the video frames
    `frames()` read."""
    spec: str
    kind: str
    paths: list
    total: int = 0
    fps: float = 0.0
    frames_decoded: int = 0
    frame_range: tuple = None

    def frames(self):
        """Frames in order (lazily: one decoded image in memory at a time)."""
        kept = range(*self.frame_range) if self.frame_range else None
        if self.kind == "video":
            self.frames_decoded = 0
            for frame in _video_frames(self.paths[0], kept.stop if kept else None):
                if kept is None or frame.index in kept or frame.error:
                    self.frames_decoded += frame.image is not None
                    yield frame
        else:
            for index, path in enumerate(self.paths):
                if kept is None or index in kept:
                    yield _read_image(path, index)

    def missing_frames(self):
        """Frames a video's header announces that `frames()` did not read (0 for images, or when the
        header gives no count)."""
        return max(0, self.total - self.frames_decoded) if self.kind == "video" else 0


def _is_video(path):
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _is_image(path):
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _read_image(path, index):
    if not os.path.isfile(path):
        return Frame(path, index, error="file not found")
    image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        return Frame(path, index, error="cannot be decoded as an image")
    return Frame(path, index, image)


def _video_frames(path, stop=None):
    """Frames 0, 1, ... (before `stop`); frames before a range's start are decoded and dropped by the
    caller, as seeking is not frame-exact in every codec."""
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            yield Frame(path, 0, error="cannot be opened as a video")
            return
        index = 0
        while stop is None or index < stop:
            ok, image = capture.read()
            if not ok:
                break
            yield Frame(f"{path}#{index}", index, image)
            index += 1
        if index == 0:
            yield Frame(path, 0, error="video has no readable frames")
    finally:
        capture.release()


def _video_header(path):
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            return 0, 0.0
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))), float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()


def open_input(spec, frame_range=None):
    """Resolve an --input value to an InputSource (`frame_range`: (start, stop, step) or None);
    FileNotFoundError when it names nothing, InputError when the range holds none of its frames."""
    source = _resolve(os.fspath(spec))
    if frame_range:
        available = source.total if source.kind == "images" or source.total else frame_range[1]
        kept = range(frame_range[0], min(frame_range[1], available), frame_range[2])
        if not len(kept):
            raise InputError(f"--frames {':'.join(map(str, frame_range))}: {spec} has {available} "
                             f"{'frame' if source.kind == 'video' else 'image'}(s) (numbered from 0)")
        source.frame_range, source.total = (kept.start, kept.stop, kept.step), len(kept)
    return source


def _resolve(spec):
    if any(character in spec for character in GLOB_CHARACTERS) and not os.path.exists(spec):
        paths = sorted(path for path in glob.glob(spec, recursive=True) if os.path.isfile(path))
        if not paths:
            raise FileNotFoundError(f"--input {spec}: the pattern matches no file")
        return InputSource(spec, "images", paths, len(paths))
    if os.path.isdir(spec):
        paths = sorted(os.path.join(spec, name) for name in os.listdir(spec)
                       if _is_image(name) and os.path.isfile(os.path.join(spec, name)))
        if not paths:
            raise FileNotFoundError(f"--input {spec}: the folder holds no image files "
                                    f"({', '.join(IMAGE_EXTENSIONS)})")
        return InputSource(spec, "images", paths, len(paths))
    if not os.path.exists(spec):
        raise FileNotFoundError(f"--input {spec}: no such file or folder")
    if _is_video(spec):
        total, fps = _video_header(spec)
        return InputSource(spec, "video", [spec], total, fps)
    return InputSource(spec, "images", [spec], 1)
