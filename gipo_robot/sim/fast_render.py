"""Camera rendering that keeps up on a CPU: robosuite's offscreen context, leaner (``render_quality="fast"``).

Where the time goes. Without a GPU, MuJoCo's OpenGL calls run on Mesa's llvmpipe, and an 84x84 frame of
the Lift scene cost ~20 ms in robosuite's exact settings: ~10 ms drawing (vertex work: the Panda's visual
meshes have ~170k triangles, and the rendered pixels are few) and ~10 ms in ``glReadPixels`` resolving
robosuite's 4x multisampled 640x480 framebuffer. So:

- no multisampling and no planar reflections (the table and floor draw the scene a second time mirrored):
  the framebuffer is single-sampled, and sized to the image (not 640x480);
- no shadows (robosuite's lights cast none, so this changes no pixel; it keeps the next point exact);
- **frustum culling**: before each frame, geoms whose bounding sphere lies wholly outside the camera's
  view are left out of the scene (their ``geom_rgba`` alpha is 0 for the one ``mjv_updateScene`` call,
  which skips invisible geoms, and restored right after). With reflections and shadows off, a geom
  outside the frustum touches no pixel, so this changes nothing in the image; from ``agentview`` it
  leaves out most of the arm's links and the pedestal (about half the triangles).

- **coarser visual meshes**: meshes only drawn (no collision: ``contype = conaffinity = 0``) are simplified
  once, by vertex clustering on a grid of :func:`lod_cell` (4 mm for 84-pixel frames, a third of what one
  pixel of ``agentview`` covers on the table), to about half their triangles. Physics never reads these
  faces (only ``mj_ray`` would, which no task uses): trajectories are unchanged, and the frames move by a
  mean of ~0.01-0.06 levels per channel.

What remains differs from robosuite's exact frame by reflections and edge anti-aliasing only (a mean
absolute difference of about 1/255 per channel); frames are deterministic (same state, same pixels).
Segmentation renders and the free camera go through robosuite's own path unchanged.

Several envs in one process. robosuite makes an env's GL context current only when it builds it, so an
env built earlier rendered with a later env's context (garbage frames). Every frame here first makes its
own env's context current, in both qualities (``exact`` changes nothing else).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Slack on the bounding-sphere test (metres), so a geom grazing the frustum's edge is always drawn.
CULL_MARGIN = 0.01
#: Mesh simplification grid x image side (metres x pixels): 4.2 mm cells for 84-pixel frames.
LOD_CELL_PIXELS = 0.35


def lod_cell(image_size: int) -> float:
    """The vertex-clustering cell (metres) for frames of ``image_size`` pixels."""
    return LOD_CELL_PIXELS / image_size


def _visual_only_meshes(model: Any) -> np.ndarray:
    """Ids of the meshes that only non-colliding geoms use."""
    import mujoco

    mesh_geoms = np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_MESH)
    colliding = (model.geom_contype[mesh_geoms] != 0) | (model.geom_conaffinity[mesh_geoms] != 0)
    used = np.zeros(model.nmesh, bool)
    used[model.geom_dataid[mesh_geoms]] = True
    used[model.geom_dataid[mesh_geoms[colliding]]] = False
    return np.flatnonzero(used)


def _cluster_faces(vert: np.ndarray, face: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``face`` kept, their new vertex ids) after clustering ``vert`` on a ``cell`` grid."""
    _, cluster = np.unique(np.floor(vert / cell).astype(np.int64), axis=0, return_inverse=True)
    cluster = cluster.ravel()
    n = int(cluster.max()) + 1
    centre = np.zeros((n, 3))
    np.add.at(centre, cluster, vert)
    centre /= np.bincount(cluster, minlength=n)[:, None]
    # each cluster is represented by its vertex nearest its centre (vertices never move)
    order = np.lexsort((((vert - centre[cluster]) ** 2).sum(1), cluster))
    first = np.ones(len(order), bool)
    first[1:] = cluster[order][1:] != cluster[order][:-1]
    representative = np.empty(n, np.int64)
    representative[cluster[order][first]] = order[first]
    new = representative[cluster[face]]
    keep = (new[:, 0] != new[:, 1]) & (new[:, 1] != new[:, 2]) & (new[:, 0] != new[:, 2])
    _, unique = np.unique(np.sort(new[keep], axis=1), axis=0, return_index=True)
    rows = np.flatnonzero(keep)[np.sort(unique)]
    return rows, new[rows]


def simplify_visual_meshes(model: Any, cell: float) -> tuple[int, int]:
    """Simplify, in place, the faces of the meshes only drawn; returns the drawn faces (before, after).

    Each mesh keeps its vertices; its first ``k`` faces become the simplified ones (normals and texture
    coordinates follow their faces) and ``mesh_facenum`` becomes ``k``. Call before the render context
    uploads the meshes.
    """
    meshes = _visual_only_meshes(model)
    before = int(model.mesh_facenum[meshes].sum())
    per_face = [a for a in (model.mesh_facenormal, model.mesh_facetexcoord) if len(a) == model.nmeshface]
    for i in meshes:
        v0, nv = model.mesh_vertadr[i], model.mesh_vertnum[i]
        f0, nf = model.mesh_faceadr[i], model.mesh_facenum[i]
        rows, faces = _cluster_faces(model.mesh_vert[v0 : v0 + nv], model.mesh_face[f0 : f0 + nf], cell)
        if len(rows) == 0:
            continue
        for array in per_face:
            array[f0 : f0 + len(rows)] = array[f0 : f0 + nf][rows].copy()
        model.mesh_face[f0 : f0 + len(rows)] = faces
        model.mesh_facenum[i] = len(rows)
    return before, int(model.mesh_facenum[meshes].sum())


class OffscreenRenderer:
    """Wraps ``rs_env``'s offscreen render context: its own GL context current for every frame, and with
    ``fast``, the fast settings and per-frame culling.

    Args:
        rs_env: a robosuite env built with ``has_offscreen_renderer=True``.
        image_size: the largest frame it will render (the framebuffer's width and height, when ``fast``).
        fast: ``render_quality="fast"``; False renders exactly as robosuite does.
    """

    def __init__(self, rs_env: Any, image_size: int, fast: bool = True) -> None:
        import mujoco

        sim = rs_env.sim
        self._sim = sim
        self._model = sim.model._model
        self._data = sim.data._data
        context = sim._render_context_offscreen
        self._context = context
        self.fast = fast
        self._stock_render = context.render
        context.render = self.render  # robosuite's observables call sim.render -> context.render
        if not fast:
            return
        context.gl_ctx.make_current()
        model = self._model
        model.vis.quality.offsamples = 0
        model.vis.global_.offwidth = int(image_size)
        model.vis.global_.offheight = int(image_size)
        self.faces = simplify_visual_meshes(model, lod_cell(image_size))
        context.con.free()  # sample count and buffer size are fixed when the GPU context is made
        context._set_mujoco_context_and_buffers()
        flags = context.scn.flags
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        # planes (rbound 0: infinite) and geoms with a zero-size bound are never culled
        self._cullable = np.flatnonzero(model.geom_rbound > 0)

    def hidden_geoms(self, camera_id: int, aspect: float = 1.0) -> np.ndarray:
        """Ids of the geoms wholly outside camera ``camera_id``'s view (``aspect`` = width / height)."""
        model, data = self._model, self._data
        ids = self._cullable
        tan_y = np.tan(np.deg2rad(model.cam_fovy[camera_id]) / 2.0)
        tan_x = tan_y * aspect
        rot = data.cam_xmat[camera_id].reshape(3, 3)  # columns: the camera's x (right), y (up), z (back)
        local = (data.geom_xpos[ids] - data.cam_xpos[camera_id]) @ rot
        depth = -local[:, 2]
        radius = model.geom_rbound[ids] + CULL_MARGIN
        outside = depth < -radius  # wholly behind the camera
        outside |= (np.abs(local[:, 0]) - depth * tan_x) / np.hypot(1.0, tan_x) > radius
        outside |= (np.abs(local[:, 1]) - depth * tan_y) / np.hypot(1.0, tan_y) > radius
        return ids[outside]

    def render(
        self, width: int, height: int, camera_id: int | None = None, segmentation: bool = False
    ) -> None:
        """robosuite's ``MjRenderContext.render`` in this env's GL context; ``fast``: out-of-view geoms
        left out of the scene."""
        self._context.gl_ctx.make_current()
        model = self._model
        stock = not self.fast or segmentation or camera_id is None or camera_id < 0
        if stock or model.cam_sensorsize[camera_id].any():
            # exact; the free camera and cameras with intrinsics (another frustum): draw everything
            self._stock_render(width, height, camera_id=camera_id, segmentation=segmentation)
            return
        hidden = self.hidden_geoms(camera_id, width / height)
        alpha = model.geom_rgba[hidden, 3].copy()
        model.geom_rgba[hidden, 3] = 0.0
        try:
            self._stock_render(width, height, camera_id=camera_id, segmentation=segmentation)
        finally:
            model.geom_rgba[hidden, 3] = alpha
