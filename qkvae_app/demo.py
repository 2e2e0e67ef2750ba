"""The app's page: ``build_demo(settings)`` loads a ``Studio`` and builds one tab per builder,
then wires the flows between tabs, here and nowhere else.

A tab is a class with its handlers and a ``build`` method that lays it out inside ``gr.Tabs``
and wires its own events (``qkvae_app.reconstruct_tab``, ``tokens_tab``, ``dataset_tab``,
``explore_tab``, ``compare_tab``, ``probe_tab``); adding one is one class and one line below. Nothing is loaded at import.
"""

from dataclasses import dataclass

import gradio as gr

from qkvae_app import panels, views
from qkvae_app.compare_tab import CompareTab
from qkvae_app.dataset_tab import DatasetTab
from qkvae_app.explore_tab import MAX_UPLOAD, ExploreTab, open_gallery_image, open_table_row
from qkvae_app.mcp_tools import Tools
from qkvae_app.probe_tab import ProbeTab
from qkvae_app.reconstruct_tab import ReconstructTab
from qkvae_app.settings import Settings
from qkvae_app.studio import Studio
from qkvae_app.tokens_tab import TokensTab

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
CACHE_LIFETIME = (3600, 3600)  # every hour, delete the served files older than an hour


def launch_options() -> dict:
    """``demo.launch`` keywords: the theme (no web fonts: works offline), the CSS, the upload limit."""
    theme = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate", font=SYSTEM_FONTS,
                           font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
    return {"theme": theme, "css": panels.CSS, "max_file_size": MAX_UPLOAD}


@dataclass(frozen=True)
class Demo:
    """The built page and its parts: tests call the tabs' handlers; ``app.py`` launches ``blocks``."""

    blocks: gr.Blocks
    studio: Studio
    reconstruct: ReconstructTab
    tokens: TokensTab
    dataset: DatasetTab
    explore: ExploreTab
    compare: CompareTab
    probe: ProbeTab


def inspect_token(evt: gr.SelectData):
    """A click on a 48x48 map of the Reconstruct tab -> that token, shown in the Tokens tab."""
    return *views.cell_at(*evt.index), gr.Tabs(selected="tokens")


def build_demo(settings: Settings) -> Demo:
    """Load what ``settings`` name and build the page (queued: see ``blocks.queue`` below)."""
    studio = Studio.load(settings)
    config = studio.config
    with gr.Blocks(title="QKVAE Studio", analytics_enabled=False, delete_cache=CACHE_LIFETIME) as blocks:
        gr.HTML('<div class="qk-header"><h1>QKVAE Studio</h1><p>What the QKVAE-1m tokenizer keeps and loses: '
                f"a {config.image_size}×{config.image_size} image becomes {config.grid_size}×{config.grid_size} = "
                f"{config.num_tokens:,} FSQ tokens (ids 0..{config.codebook_size - 1:,}) and back.</p></div>")
        gr.HTML(studio.status)
        shown_tokens = gr.State()  # the grid the Tokens tab shows: a TokenState
        with gr.Tabs() as tabs:
            reconstruct = ReconstructTab(studio).build(shown_tokens)
            tokens = TokensTab(studio).build(shown_tokens)
            dataset = DatasetTab(studio).build()
            explore = ExploreTab(studio).build()
            compare = CompareTab(studio).build()
            probe = ProbeTab(studio).build()

        # ---- flows between tabs
        # Reconstruct -> Tokens: a reconstruction's tokens open in the Tokens tab.
        tokens.open_on(reconstruct.event.success, api_name="open_tokens")
        # Reconstruct -> Tokens: a click on a map opens that token.
        tokens.show_on(gr.on([reconstruct.token_map.select, reconstruct.error_map.select, reconstruct.ood_map.select],
                             inspect_token, None, [tokens.row, tokens.col, tabs], api_visibility="undocumented").then,
                       api_visibility="undocumented")
        # Explore -> Reconstruct: a click on the gallery or a table row opens that image, under its name.
        explore.explore_gallery.select(open_gallery_image, [explore.explored, explore.worst_by],
                                       [reconstruct.image, tabs], api_visibility="undocumented")
        explore.explore_table.select(open_table_row, explore.explored, [reconstruct.image, tabs],
                                     api_visibility="undocumented")
        # Explore -> Compare: the images uploaded in Explore, compared under A and B.
        compare.upload_event(explore.upload)
        # The typed API and MCP tools (qkvae_app.mcp_tools); the endpoints above stay callable, undocumented.
        Tools(studio, compare.cache).wire(blocks)
    blocks.queue(default_concurrency_limit=2, max_size=64)
    return Demo(blocks, studio, reconstruct, tokens, dataset, explore, compare, probe)
