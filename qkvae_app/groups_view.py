"""The Explore tab's groups: the explored images grouped by ``analysis.groups``' rule (an image's
folder in the zip, else its file name's prefix before the first ``_`` or ``-``), with a per-group
table (each group's OOD AUROC against a reference group the person picks), a scatter of OOD score
against PSNR coloured by group, and each group's PSNR distribution against the STL-10 reference
(``analysis.psnr_reference``). Charts are DataFrames drawn by the browser.

``GroupsPanel.build`` lays the panel out inside the Explore tab; ``qkvae_app.explore_tab`` shows
it after each run.
"""

from dataclasses import dataclass

import gradio as gr
import numpy as np
import pandas as pd

from analysis.groups import GroupTable, group_of
from analysis.psnr_reference import PSNRReference, load_psnr_reference
from qkvae_app.explore import Exploration
from qkvae_app.outputs import Outputs

GROUP_COLUMNS = {"group": "group", "count": "images", "psnr": "PSNR (dB)", "ssim": "SSIM",
                 "psnr_residual": "residual (dB)", "ood_score": "OOD score (median)", "flagged": "share flagged",
                 "auroc": "AUROC vs reference"}
REFERENCE_LABEL = "STL-10 reference"
RULE = ("Groups are the folders inside a zip; an image outside any folder is grouped by its file name's prefix "
        "before the first `_` or `-` (`face_01.png` → `face`), else it is in `other`. A group's AUROC says how "
        "well the OOD score tells it (higher) from the reference group: 0.5 is chance, 1 perfect. "
        "Flagged: the verdict \"out of distribution\".")


def table_frame(table: GroupTable) -> pd.DataFrame:
    """The group table with readable headers, rounded for display."""
    frame = pd.DataFrame([vars(r) for r in table.rows], columns=list(GROUP_COLUMNS)).astype(
        {c: float for c in ("ood_score", "flagged", "auroc")})
    return frame.round({"psnr": 2, "ssim": 4, "psnr_residual": 2, "ood_score": 3, "flagged": 3,
                        "auroc": 3}).rename(columns=GROUP_COLUMNS)


def scatter_frame(result: Exploration) -> pd.DataFrame:
    """One point per scored image: PSNR, OOD score, group, name."""
    return pd.DataFrame([{"PSNR (dB)": r.psnr, "OOD score": r.ood_score, "group": group_of(r.name), "name": r.name}
                         for r in result.rows if r.ood_score is not None],
                        columns=["PSNR (dB)", "OOD score", "group", "name"])


def distribution_frame(result: Exploration, reference: PSNRReference) -> pd.DataFrame:
    """Each group's empirical PSNR distribution (the share of its images at or below each PSNR)
    and the STL-10 reference's quantiles, as lines."""
    frames = [pd.DataFrame({"PSNR (dB)": reference.psnr, "share at or below": reference.quantiles,
                            "group": REFERENCE_LABEL})]
    for name, members in pd.DataFrame({"group": [group_of(r.name) for r in result.rows],
                                       "psnr": [r.psnr for r in result.rows]}).groupby("group"):
        psnrs = np.sort(members["psnr"].to_numpy())
        frames.append(pd.DataFrame({"PSNR (dB)": psnrs, "share at or below": np.arange(1, psnrs.size + 1) / psnrs.size,
                                    "group": name}))
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class GroupsView(Outputs):
    group_note: str
    group_reference: gr.Dropdown  # the groups, the reference picked
    group_table: pd.DataFrame
    group_scatter: pd.DataFrame
    group_distribution: pd.DataFrame

    @classmethod
    def of(cls, result: Exploration, reference: str | None = None) -> "GroupsView":
        table = result.groups(reference)
        ref = load_psnr_reference()
        scored = "" if any(r.ood_score is not None for r in result.rows) else \
            " No OOD reference is loaded: the OOD columns and the scatter stay empty."
        note = (f'<p class="qk-note"><b>{len(table.rows)}</b> groups; AUROCs against <b>{table.reference}</b>. '
                f"The STL-10 reference is {ref.images} STL-10 images with the shipped weights.{scored}</p>")
        return cls(note, gr.Dropdown(choices=table.names, value=table.reference), table_frame(table),
                   scatter_frame(result), distribution_frame(result, ref))


class GroupsPanel:
    def show(self, result: Exploration | None, reference: str | None = None) -> GroupsView | None:
        """The groups of the last run, the AUROCs against ``reference`` (default: the largest group)."""
        if result is None:
            return None
        return GroupsView.of(result, reference if reference in {group_of(r.name) for r in result.rows} else None)

    def build(self, explored: gr.State) -> "GroupsPanel":
        """Lay the panel out (inside the Explore tab) for the runs kept in ``explored``."""
        self.explored = explored
        with gr.Group():
            gr.Markdown("### By group\n" + RULE)
            with gr.Row():
                self.group_reference = gr.Dropdown(label="Reference group (the AUROCs are against it)",
                                                   choices=[], interactive=True)
                self.group_note = gr.HTML(elem_id="group-note")
            self.group_table = gr.Dataframe(headers=list(GROUP_COLUMNS.values()), interactive=False,
                                            label="Per group: means, median OOD score, share flagged, AUROC",
                                            elem_id="group-table")
            with gr.Row():
                self.group_scatter = gr.ScatterPlot(x="PSNR (dB)", y="OOD score", color="group", tooltip=["name", "group"],
                                                    label="OOD score against PSNR", height=320,
                                                    elem_id="group-scatter")
                self.group_distribution = gr.LinePlot(x="PSNR (dB)", y="share at or below", color="group",
                                                      label="PSNR distribution against the STL-10 reference",
                                                      height=320, y_lim=[0, 1], elem_id="group-distribution")
        outputs = GroupsView.components(self)
        self.group_reference.input(GroupsView.handler(self.show, len(outputs)), [explored, self.group_reference],
                                   outputs, api_visibility="undocumented")
        return self

    def follow(self, start, run) -> None:
        """Clear the groups at ``start``, the click of an Explore run (a refused run leaves none on
        screen), and show them after ``run``, its event that fills ``explored``."""
        outputs = GroupsView.components(self)
        start.then(GroupsView.handler(self.cleared, len(outputs)), None, outputs, queue=False,
                   api_visibility="undocumented")
        run.success(GroupsView.handler(self.show, len(outputs)), self.explored, outputs, api_visibility="undocumented")

    def cleared(self) -> None:
        """No groups on screen."""
