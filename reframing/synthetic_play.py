"""Generated game footage with known ground truth, for the "follow the play" tests and
evaluation (bench/follow_play.py).

A wide pitch (the *world*) is filmed by a virtual camera that pans after the ball with a
lag and zooms in and out, as an amateur behind the goal line would. Ten players run
towards the ball; the ball is passed between them. Options add what makes real footage
hard: the ball hidden behind players (drawn under them), and an operator who loses the
ball for a while (the camera stops and the ball leaves the frame).

``render(scene)`` yields ``(frame_bgr, truth)`` per frame; ``truth`` says where the
ball is in the frame, whether it can be seen, and where the action is (the players
nearest the ball), all in frame pixels.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

GRASS = ((44, 122, 44), (52, 140, 52))  # BGR stripes
LINE = (235, 235, 235)
BALL = (245, 245, 245)  # a white ball, as most are
TEAM_COLOURS = ((40, 40, 200), (200, 120, 30))  # red shirts, blue shirts (BGR)


@dataclass(frozen=True)
class Scene:
    seconds: float = 12.0
    fps: float = 30.0
    width: int = 1280
    height: int = 720
    pan: bool = True  # the camera follows the ball (with a lag)
    zoom: bool = False  # and zooms in and out
    occlusions: bool = False  # passes go behind players
    loses_ball: bool = False  # the operator stops for a while: the ball leaves the frame
    seed: int = 1
    world_width_factor: float = 2.6  # the pitch is this many frames wide
    name: str = field(default="")


@dataclass(frozen=True)
class Truth:
    time: float
    ball: tuple[float, float]  # frame pixels (may be outside the frame)
    ball_visible: bool
    action: tuple[float, float]  # centre of the three players nearest the ball, frame px


class _World:
    def __init__(self, scene: Scene):
        self.scene = scene
        self.rng = np.random.default_rng(scene.seed)
        self.width = round(scene.width * scene.world_width_factor)
        self.height = round(scene.height * 1.25)
        self.player_radius = scene.height / 40
        self.ball_radius = scene.height / 110
        self.pitch = self._draw_pitch()
        self.ball_path = self._ball_path()
        self.players = self.rng.uniform(
            (self.width * 0.1, self.height * 0.15),
            (self.width * 0.9, self.height * 0.85),
            size=(10, 2),
        )

    def _draw_pitch(self):
        w, h = self.width, self.height
        pitch = np.empty((h, w, 3), np.uint8)
        stripe = max(8, w // 24)
        for i, x in enumerate(range(0, w, stripe)):
            pitch[:, x : x + stripe] = GRASS[i % 2]
        # Grain: real grass is never flat, and it gives the camera-motion estimate texture.
        grain = self.rng.normal(0, 6, (h // 4, w // 4)).astype(np.float32)
        grain = cv2.resize(grain, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        pitch = np.clip(pitch.astype(np.float32) + grain, 0, 255).astype(np.uint8)
        thick = max(2, h // 200)
        m = h // 14
        cv2.rectangle(pitch, (m, m), (w - m, h - m), LINE, thick)
        cv2.line(pitch, (w // 2, m), (w // 2, h - m), LINE, thick)
        cv2.circle(pitch, (w // 2, h // 2), h // 6, LINE, thick)
        for x0, x1 in ((m, m + w // 10), (w - m - w // 10, w - m)):
            cv2.rectangle(pitch, (x0, h // 3), (x1, 2 * h // 3), LINE, thick)
        # Advertising boards along the far side: texture for the camera estimate.
        for i, x in enumerate(range(0, w, w // 18)):
            colour = ((30, 30, 160), (160, 160, 30), (200, 200, 200))[i % 3]
            cv2.rectangle(pitch, (x, 0), (x + w // 18 - 6, m - 6), colour, -1)
        return pitch

    def _ball_path(self):
        """Ball positions (world px) at every frame: passes between random spots."""
        scene = self.scene
        frames = round(scene.seconds * scene.fps)
        positions = np.empty((frames, 2))
        here = np.array([self.width / 2, self.height / 2])
        goal, speed = here, 0.0
        for i in range(frames):
            if np.linalg.norm(goal - here) < 1.0:
                goal = self._next_pass(here)
                speed = self.rng.uniform(0.35, 0.8) * scene.width  # px/s
            step = goal - here
            distance = np.linalg.norm(step)
            move = min(distance, speed / scene.fps)
            if distance > 0:
                here = here + step / distance * move
            positions[i] = here
        return positions

    def _next_pass(self, here):
        margin = np.array([self.width * 0.08, self.height * 0.15])
        for _ in range(20):
            offset = self.rng.normal(0, 1, 2) * (self.scene.width * 0.45, self.height * 0.25)
            goal = np.clip(here + offset, margin, (self.width, self.height) - margin)
            if np.linalg.norm(goal - here) > self.scene.width * 0.15:
                return goal
        sideways = here + np.array([self.scene.width * 0.3, 0.0])
        return np.clip(sideways, margin, (self.width, self.height) - margin)

    def step_players(self, ball, dt):
        """Players run at the ball (the nearest hardest), with a little wander."""
        towards = ball - self.players
        distance = np.linalg.norm(towards, axis=1, keepdims=True) + 1e-6
        speed = self.scene.width * np.where(distance < self.scene.width * 0.6, 0.3, 0.12)
        wander = self.rng.normal(0, self.scene.width * 0.02, self.players.shape)
        keep_off = np.where(distance < self.player_radius * 3, -1.0, 1.0)  # don't all pile on
        self.players += (towards / distance * speed * keep_off + wander) * dt


def render(scene: Scene):
    """Yield ``(frame_bgr, Truth)`` for each frame of ``scene``."""
    world = _World(scene)
    frames = len(world.ball_path)
    camera = world.ball_path[0].copy()
    lag = 0.9  # s: the operator's reaction
    lose_from, lose_to = scene.seconds * 0.45, scene.seconds * 0.6
    half = np.array([scene.width / 2, scene.height / 2])
    for i in range(frames):
        t = i / scene.fps
        ball = world.ball_path[i]
        world.step_players(ball, 1 / scene.fps)
        operator_lost = scene.loses_ball and lose_from <= t < lose_to
        if scene.pan and not operator_lost:
            camera += (ball - camera) * min(1.0, 1 / (lag * scene.fps))
        zoom = 1.0 + (0.25 * (0.5 - 0.5 * np.cos(2 * np.pi * t / 6.0)) if scene.zoom else 0.0)
        # Keep the view on the pitch.
        view_half = half / zoom
        camera = np.clip(camera, view_half, (world.width, world.height) - view_half)
        frame = _view(world, camera, zoom, scene)
        fb = (ball - camera) * zoom + half
        players = (world.players - camera) * zoom + half
        radius_p = world.player_radius * zoom
        radius_b = world.ball_radius * zoom
        hidden = bool(np.any(np.linalg.norm(players - fb, axis=1) < radius_p + radius_b * 0.5))
        if not scene.occlusions:
            hidden = False
        inside = 0 <= fb[0] < scene.width and 0 <= fb[1] < scene.height
        # With occlusions the ball is drawn first, so a player in front hides it.
        if scene.occlusions:
            _draw_ball(frame, fb, radius_b, inside)
        for k, p in enumerate(players):
            cv2.circle(frame, _pt(p), max(3, round(radius_p)), TEAM_COLOURS[k % 2], -1, cv2.LINE_AA)
        if not scene.occlusions:
            _draw_ball(frame, fb, radius_b, inside)
        nearest = players[np.argsort(np.linalg.norm(players - fb, axis=1))[:3]].mean(axis=0)
        yield frame, Truth(t, (float(fb[0]), float(fb[1])), inside and not hidden,
                           (float(nearest[0]), float(nearest[1])))  # fmt: skip


def _draw_ball(frame, centre, radius, inside):
    if inside:
        cv2.circle(frame, _pt(centre), max(2, round(radius)), BALL, -1, cv2.LINE_AA)


def _view(world, camera, zoom, scene):
    """The camera's picture of the pitch: an affine warp (pan and zoom)."""
    half = np.array([scene.width / 2, scene.height / 2])
    offset = half - camera * zoom
    matrix = np.array([[zoom, 0, offset[0]], [0, zoom, offset[1]]], np.float32)
    return cv2.warpAffine(
        world.pitch, matrix, (scene.width, scene.height), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def _pt(p):
    return round(float(p[0])), round(float(p[1]))


def write(scene: Scene, path, *, crf: int = 23, preset: str = "ultrafast") -> list[Truth]:
    """Encode ``scene`` to an H.264 MP4 at ``path``; returns the ground truth per frame."""
    import av

    truths = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=round(scene.fps), options={"crf": str(crf), "preset": preset}
        )
        stream.width, stream.height, stream.pix_fmt = scene.width, scene.height, "yuv420p"
        for frame, truth in render(scene):
            truths.append(truth)
            video_frame = av.VideoFrame.from_ndarray(frame, format="bgr24")
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return truths
