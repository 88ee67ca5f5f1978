"""Files for a real RKE2 / Rancher cluster from the plan (``multihome render``).

``render_lab(lab_file, out_dir, target, force, token_source) -> RenderResult`` checks the
lab, plans it, renders every file in memory, validates each one (Kubernetes and CRD
schemas, CNI configs) and only then writes them. Modules: ``rke2`` (node config.yaml,
HelmChartConfigs), ``netplan``, ``manifests``, ``rancher``, ``readme``, ``targets`` (the
file set of a target), ``validate`` / ``kube`` / ``schema``, ``token``, ``tree`` (paths and
writing), ``yamltext``, ``command``.
"""

from multihome.render.command import (
    PlanFailed,
    Rendering,
    RenderResult,
    render_in_memory,
    render_lab,
)
from multihome.render.errors import (
    DesignInvalid,
    InvalidOutput,
    OutputConflict,
    OutputError,
    RenderError,
    TokenError,
)
from multihome.render.targets import Target, render_files
from multihome.render.token import TOKEN_ENV, Token, TokenSource
from multihome.render.tree import RenderedFile

__all__ = [
    "TOKEN_ENV",
    "DesignInvalid",
    "InvalidOutput",
    "OutputConflict",
    "OutputError",
    "PlanFailed",
    "RenderError",
    "RenderResult",
    "RenderedFile",
    "Rendering",
    "Target",
    "Token",
    "TokenError",
    "TokenSource",
    "plan_lab",
    "render_files",
    "render_in_memory",
    "render_lab",
    "render_plan",
]
