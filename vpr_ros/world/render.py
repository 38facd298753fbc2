"""Headless OpenGL renderer of a Town (moderngl, EGL; Mesa llvmpipe works without a GPU)."""
from __future__ import annotations

import math
from importlib import resources
from typing import Optional, Tuple

import cv2
import numpy as np

from vpr_ros.world import post
from vpr_ros.world.camera import CameraPose, gl_bytes, look_at, orthographic, perspective
from vpr_ros.world.conditions import Condition, get_condition
from vpr_ros.world.mesh import FLOATS_PER_VERTEX, occluder_mesh, town_mesh
from vpr_ros.world.town import Town

MAX_OCCLUDER_VERTICES = 36 * 2 * 64
VERTEX_FORMAT = '3f 3f 3f 2f 1f 4f'
POSITION_ONLY_FORMAT = '3f 12x 12x 8x 4x 16x'  # same stride, skips all but the position
ATTRIBUTES = ('in_pos', 'in_nrm', 'in_col', 'in_uv', 'in_mat', 'in_prm')


def format_bytes(fmt: str) -> int:
    """Bytes per vertex of a moderngl buffer format such as '3f 12x'."""
    total = 0
    for item in fmt.split():
        count, kind = int(item[:-1] or 1), item[-1]
        total += count * (4 if kind == 'f' else 1)
    return total


class RenderError(RuntimeError):
    """No usable OpenGL context (EGL/Mesa missing) or a shader that does not compile."""


def _shader_source(name: str) -> str:
    return resources.files('vpr_ros.world').joinpath('shaders', name).read_text()


def _program(ctx, name: str, common: bool = True):
    body = (_shader_source('common.glsl') + '\n' if common else '') + _shader_source(name)
    head = '#version 330\n'
    return ctx.program(vertex_shader=head + '#define VERTEX_SHADER\n' + body,
                       fragment_shader=head + '#define FRAGMENT_SHADER\n' + body)


def create_context():
    """A headless OpenGL 3.3+ context through EGL, or RenderError saying what to install."""
    try:
        import moderngl
    except ImportError as exc:
        raise RenderError(f'moderngl is not installed ({exc}); pip install moderngl') from None
    try:
        return moderngl.create_standalone_context(backend='egl')
    except Exception as exc:  # moderngl raises plain Exception for missing EGL/drivers
        raise RenderError(
            f'cannot create a headless EGL OpenGL context ({exc}). Install Mesa EGL '
            '(Debian/Ubuntu: apt-get install libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri)'
        ) from None


class Renderer:
    """Renders RGB views of one town; ``supersample`` renders larger and area-downsamples."""

    def __init__(self, town: Town, size: Tuple[int, int] = (320, 240), supersample: int = 2,
                 fovy_deg: float = 55.0, far_m: float = 260.0, shadow_size: int = 1024,
                 shadows: bool = True):
        self.town, self.size, self.fovy, self.far = town, tuple(size), fovy_deg, far_m
        self.shadows = shadows
        self.ss = max(1, int(supersample))
        self.ctx = create_context()
        ctx = self.ctx
        self.scene = _program(ctx, 'scene.glsl')
        self.sky = _program(ctx, 'sky.glsl')
        self.shadow = _program(ctx, 'shadow.glsl', common=False)
        vertices = town_mesh(town)
        self.triangles = len(vertices) // 3
        self._vbo = ctx.buffer(vertices.tobytes())
        self._occ = ctx.buffer(reserve=MAX_OCCLUDER_VERTICES * FLOATS_PER_VERTEX * 4, dynamic=True)
        self._vao = ctx.vertex_array(self.scene, [(self._vbo, VERTEX_FORMAT, *ATTRIBUTES)])
        self._occ_vao = ctx.vertex_array(self.scene, [(self._occ, VERTEX_FORMAT, *ATTRIBUTES)])
        pos = POSITION_ONLY_FORMAT
        self._sh_vao = ctx.vertex_array(self.shadow, [(self._vbo, pos, 'in_pos')])
        self._sh_occ = ctx.vertex_array(self.shadow, [(self._occ, pos, 'in_pos')])
        self._sky_vao = ctx.vertex_array(self.sky, [])
        w, h = self.size[0] * self.ss, self.size[1] * self.ss
        self._fbo = ctx.framebuffer(ctx.renderbuffer((w, h)), ctx.depth_renderbuffer((w, h)))
        self._shadow_tex = ctx.depth_texture((shadow_size, shadow_size))
        self._shadow_tex.compare_func = '<='
        self._shadow_fbo = ctx.framebuffer(depth_attachment=self._shadow_tex)

    def close(self) -> None:
        """Release the OpenGL context."""
        if self.ctx is not None:
            self.ctx.release()
            self.ctx = None

    def __enter__(self) -> 'Renderer':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _set(self, prog, name, value):
        if name in prog:
            prog[name].value = value

    def _uniforms(self, prog, cond: Condition, sun_dir):
        for name, value in (('sun_dir', tuple(sun_dir)), ('sun_color', cond.sun_color),
                            ('sun_strength', cond.sun_strength), ('sky_zenith', cond.sky_zenith),
                            ('sky_horizon', cond.sky_horizon), ('cloud_cover', cond.cloud_cover),
                            ('night', cond.night), ('exposure', cond.exposure),
                            ('sky_seed', float(self.town.seed % 97) * 3.7)):
            self._set(prog, name, value)

    def render(self, pose: CameraPose, condition='day', occluders: Optional[np.ndarray] = None,
               noise_seed: int = 0) -> np.ndarray:
        """One (H, W, 3) uint8 RGB frame seen from ``pose`` under ``condition``."""
        cond = get_condition(condition) if isinstance(condition, str) else condition
        if self.ctx is None:
            raise RenderError('renderer is closed')
        with self.ctx:  # make this context current: several renderers may coexist
            img = self._draw(pose, cond, occluders)
        if self.ss > 1:
            img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        return post.apply(np.ascontiguousarray(img), cond, noise_seed)

    def _draw(self, pose: CameraPose, cond: Condition, occluders) -> np.ndarray:
        ctx = self.ctx
        el, az = math.radians(cond.sun_elev_deg), math.radians(cond.sun_azim_deg)
        sun_dir = np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el),
                            math.sin(el)])
        eye = np.array([pose.x, pose.y, pose.z])
        view = look_at(eye, eye + pose.forward())
        proj = perspective(self.fovy, self.size[0] / self.size[1], 0.3, self.far)
        n_occ = 0
        if occluders is not None and len(occluders):
            occ = occluder_mesh(occluders)[:MAX_OCCLUDER_VERTICES]
            self._occ.write(occ.tobytes())
            n_occ = len(occ)
        use_shadow = self.shadows and cond.sun_strength > 0.05 and cond.sun_elev_deg > 0
        light = np.eye(4)
        if use_shadow:
            centre = eye + np.r_[pose.forward()[:2], 0] * 45.0
            light = orthographic(80.0, 1.0, 600.0) @ look_at(centre + sun_dir * 300.0, centre)
            self._shadow_fbo.use()
            self._shadow_fbo.clear(depth=1.0)
            ctx.enable(ctx.DEPTH_TEST)
            self.shadow['light_mvp'].write(gl_bytes(light))
            self._sh_vao.render()
            if n_occ:
                self._sh_occ.render(vertices=n_occ)
        self._fbo.use()
        self._fbo.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        ctx.enable(ctx.DEPTH_TEST)
        # depth pre-pass: the expensive shaders then run once per pixel (early depth test)
        ctx.depth_func = '<'
        self._fbo.color_mask = (False, False, False, False)
        self.shadow['light_mvp'].write(gl_bytes(proj @ view))
        self._sh_vao.render()
        if n_occ:
            self._sh_occ.render(vertices=n_occ)
        self._fbo.color_mask = (True, True, True, True)
        ctx.depth_func = '<='
        prog = self.scene
        self._uniforms(prog, cond, sun_dir)
        prog['mvp'].write(gl_bytes(proj @ view))
        prog['light_mvp'].write(gl_bytes(light))
        for name, value in (('cam_pos', tuple(eye)), ('ambient', cond.ambient),
                            ('fog_density', cond.fog_density), ('far_dist', self.far),
                            ('wet', cond.wet), ('use_shadow', float(use_shadow))):
            self._set(prog, name, value)
        self._set_lamps(prog, eye, cond)
        self._shadow_tex.use(location=0)
        self._set(prog, 'shadow_map', 0)
        self._vao.render()
        if n_occ:
            self._occ_vao.render(vertices=n_occ)
        self._uniforms(self.sky, cond, sun_dir)  # sky last: only where nothing was drawn
        self.sky['inv_viewproj'].write(gl_bytes(np.linalg.inv(proj @ view)))
        self._sky_vao.render(vertices=3)
        ctx.depth_func = '<'
        w, h = self._fbo.size
        img = np.frombuffer(self._fbo.read(components=3, alignment=1), np.uint8).reshape(h, w, 3)
        return img[::-1]

    def _set_lamps(self, prog, eye, cond: Condition) -> None:
        lamps = self.town.lamps
        if cond.night <= 0 or not len(lamps) or 'lamps' not in prog:
            self._set(prog, 'n_lamps', 0)
            return
        near = lamps[np.argsort(np.hypot(lamps[:, 0] - eye[0], lamps[:, 1] - eye[1]))[:8]]
        pos = near.copy()
        pos[:, 2] -= 0.4
        buf = np.zeros((8, 3), np.float32)
        buf[:len(pos)] = pos
        prog['lamps'].write(buf.tobytes())
        prog['n_lamps'].value = len(pos)
