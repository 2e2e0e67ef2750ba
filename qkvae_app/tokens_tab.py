"""The Tokens tab: a token grid (of the last reconstruction, or of an uploaded token file) to
inspect token by token, edit one FSQ level at a time, download, and turn into an LM sequence.

``TokensTab(studio)`` holds the handlers (callable without a server); ``build`` lays the tab out
and wires its own events. Every event answers with a ``TokensView``.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from qkvae import TokenError, load_tokens
from qkvae.tokens import lm_vocab
from qkvae_app import files, gpu, panels, views
from qkvae_app.components import pixel_view
from qkvae_app.edit import nudge_token
from qkvae_app.errors import refuse
from qkvae_app.outputs import Outputs, skip
from qkvae_app.studio import Studio

NO_TOKENS = "Reconstruct an image or decode a token file first."
# The events that open a grid (setting the ``edited`` state), that move a level (editing it) and that outline a
# token run one at a time, in the order the page sent them (Gradio's queue is first in, first out within a
# concurrency id): a token clicked while its grid is still opening is answered after the opening, from its state,
# and the opening's answer (for the row and column it was sent with) cannot land after the click's; two level
# moves in a row both apply, each to the grid the one before left. All are quick; the lane is shared by all
# visitors. A click sets row and column in one answer, and the token is outlined once both are in (``show_on``
# after it): a .change of each would send two requests, the first with half of the click, in either order.
VIEW_LANE = {"concurrency_id": "tokens_view", "concurrency_limit": 1}


@dataclass(frozen=True)
class TokenState:
    """The grid the Tokens tab shows (its ``gr.State``): the ids, their decoded image and the file
    stem its downloads are named after."""

    grid: np.ndarray  # (48, 48) FSQ ids
    decoded: np.ndarray  # uint8 (96, 96, 3)
    name: str


@dataclass(frozen=True)
class TokensView(Outputs):
    edited: np.ndarray | None = skip()  # the edited grid (state)
    grid_view: np.ndarray | None = skip()
    decoded_view: np.ndarray | None = skip()
    edited_view: np.ndarray | None = skip()
    change_view: np.ndarray | None = skip()
    token_info: str = skip()
    token_files: list[str] | None = skip()


class TokensTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    def _decode(self, grid: np.ndarray) -> np.ndarray:
        self.studio.require_model()
        return gpu.decode(grid[None])[0]

    def _grid_view(self, grid: np.ndarray, row: int, col: int) -> np.ndarray:
        return views.token_grid_view(grid, self.studio.config.codebook_size, row, col)

    def open_tokens(self, tokens: TokenState | None, row: int, col: int) -> TokensView | None:
        """Show a token grid, unedited, with its files ready to download."""
        if tokens is None:
            return None
        grid, decoded = tokens.grid, tokens.decoded
        return TokensView(grid.copy(), self._grid_view(grid, row, col), decoded, decoded,
                          views.change_map(decoded, decoded),
                          panels.token_html(grid, grid, row, col, self.studio.config.levels),
                          files.token_files(grid, tokens.name))

    def decode_token_file(self, upload) -> TokenState | None:
        """A .npy or .json file of 2,304 ids -> the tokens to show (decoded) in the Tokens tab.

        Runs with ``preprocess=False``: ``upload`` is Gradio's file payload (or a path), so a
        wrong file is refused here, by its own name."""
        if upload is None:
            return None
        path = upload["path"] if isinstance(upload, dict) else upload
        name = (upload.get("orig_name") if isinstance(upload, dict) else None) or Path(path).name
        try:
            grid = load_tokens(path)
        except TokenError as e:
            raise refuse("Not a token file", f"{name}: {e}") from None
        return TokenState(grid, self._decode(grid), Path(name).stem.removesuffix("-tokens"))

    def select_token(self, evt: gr.SelectData):
        """A click on the enlarged token grid -> the (row, col) of the token under it."""
        return views.cell_at(*evt.index)

    def show_token(self, tokens: TokenState | None, edited, row: int, col: int) -> TokensView:
        """The token grid with (row, col) outlined, and that token's id and FSQ levels."""
        if tokens is None or edited is None:
            return TokensView(grid_view=None, token_info="")
        last = self.studio.config.grid_size - 1
        row, col = int(np.clip(row, 0, last)), int(np.clip(col, 0, last))
        return TokensView(grid_view=self._grid_view(edited, row, col),
                          token_info=panels.token_html(tokens.grid, edited, row, col, self.studio.config.levels))

    def _nudge(self, tokens: TokenState | None, edited, row: int, col: int, dim: int, step: int) -> TokensView:
        if tokens is None or edited is None:
            raise refuse("No tokens", NO_TOKENS)
        try:
            edited = nudge_token(edited, int(row), int(col), int(dim), step, self.studio.config.levels)
        except ValueError as e:
            raise refuse("Cannot move this token", str(e)) from None
        decoded = self._decode(edited)
        shown = self.show_token(tokens, edited, row, col)
        return TokensView(edited=edited, grid_view=shown.grid_view, edited_view=decoded,
                          change_view=views.change_map(tokens.decoded, decoded), token_info=shown.token_info)

    def level_down(self, tokens: TokenState | None, edited, row: int, col: int, dim: int) -> TokensView:
        """Move FSQ dimension ``dim`` of token (row, col) one level down and decode the edited grid."""
        return self._nudge(tokens, edited, row, col, dim, -1)

    def level_up(self, tokens: TokenState | None, edited, row: int, col: int, dim: int) -> TokensView:
        """Move FSQ dimension ``dim`` of token (row, col) one level up and decode the edited grid."""
        return self._nudge(tokens, edited, row, col, dim, +1)

    def lm_sequence(self, tokens: TokenState | None, base_vocab_size):
        """The LM-ready sequence for a vocabulary of ``base_vocab_size`` entries: its ids as text, and a file."""
        if tokens is None:
            raise refuse("No tokens", NO_TOKENS)
        if base_vocab_size is None or base_vocab_size < 0:
            raise refuse("Vocabulary size", "The base vocabulary size must be a whole number, 0 or more.")
        seq, path = files.lm_file(tokens.grid, int(base_vocab_size), tokens.name)
        return panels.sequence_text(seq, lm_vocab(int(base_vocab_size))), gr.DownloadButton(value=path, interactive=True)

    def build(self, tokens: gr.State) -> "TokensTab":
        """Lay the tab out (inside ``gr.Tabs``) and wire its events; ``tokens`` is the shown grid's state."""
        config, self.tokens = self.studio.config, tokens
        with gr.Tab("Tokens", id="tokens"):
            self.edited = gr.State()  # inside the tab: a component directly under gr.Tabs shows as a tab
            gr.Markdown("The tokens of the last reconstruction, or of a token file you decode. Click a token "
                        "(or type its row and column), pick an FSQ dimension and move it a level to see what it "
                        "encodes. A click on a map of the Reconstruct tab opens its token here.")
            with gr.Row():
                with gr.Column(scale=2):
                    self.grid_view = pixel_view("Token ids: click a token", height=384)
                with gr.Column(scale=2):
                    with gr.Row():
                        self.row = gr.Number(config.grid_size // 2, label="row", precision=0, minimum=0,
                                             maximum=config.grid_size - 1)
                        self.col = gr.Number(config.grid_size // 2, label="column", precision=0, minimum=0,
                                             maximum=config.grid_size - 1)
                    dim = gr.Radio([(f"dim {k} ({n} levels)", k) for k, n in enumerate(config.levels)], value=0,
                                   label="FSQ dimension")
                    with gr.Row():
                        down = gr.Button("− 1 level")
                        up = gr.Button("+ 1 level", variant="primary")
                        reset = gr.Button("Reset edits", variant="secondary")
                    self.token_info = gr.HTML()
            with gr.Row():
                self.decoded_view = pixel_view("Decoded tokens")
                self.edited_view = pixel_view("Decoded after edits")
                self.change_view = pixel_view(f"Change (0–{views.CHANGE_VMAX:.0f})")
            with gr.Row():
                with gr.Column():
                    self.token_files = gr.File(label="Token ids (.npy, .json)", file_count="multiple",
                                               interactive=False, height=130)
                    upload = gr.File(label="Decode a token file (.npy or .json)", height=200,
                                     elem_classes="qk-token-upload")
                with gr.Column():
                    with gr.Row():
                        base_vocab = gr.Number(50257, label="Base vocabulary size", precision=0, minimum=0)
                        lm_button = gr.Button("Build LM sequence")
                    lm_ids = gr.Textbox(label="LM sequence ids", lines=6, max_lines=6, buttons=["copy"])
                    lm_download = gr.DownloadButton("Download the LM sequence (.json)", interactive=False)

        self.outputs = outputs = TokensView.components(self)
        self.open_on(upload.change(self.decode_token_file, upload, self.tokens, api_name="decode_tokens",
                                   preprocess=False).success, api_name="open_decoded_tokens",
                     api_visibility="undocumented")
        self.open_on(reset.click, api_name="reset_tokens", api_visibility="undocumented")
        self.show_on(self.grid_view.select(self.select_token, None, [self.row, self.col],
                                           api_visibility="undocumented").then, api_visibility="undocumented")
        self.show_on(functools.partial(gr.on, [self.row.input, self.col.input]), api_name="show_token",
                     trigger_mode="always_last")  # typed: the last value typed is shown
        nudge_inputs = [self.tokens, self.edited, self.row, self.col, dim]
        down.click(TokensView.handler(self.level_down, len(outputs)), nudge_inputs, outputs, api_name="level_down",
                   **VIEW_LANE)
        up.click(TokensView.handler(self.level_up, len(outputs)), nudge_inputs, outputs, api_name="level_up",
                 **VIEW_LANE)
        lm_button.click(self.lm_sequence, [self.tokens, base_vocab], [lm_ids, lm_download], api_name="lm_sequence")
        return self

    def open_on(self, listener, **options):
        """Wire ``listener`` (``reset.click``, an event's ``.success``) to open the shown grid, unedited,
        in the view lane; ``options`` are the listener's own (``api_name``...)."""
        return listener(TokensView.handler(self.open_tokens, len(self.outputs)), [self.tokens, self.row, self.col],
                        self.outputs, **VIEW_LANE, **options)

    def show_on(self, listener, **options):
        """Wire ``listener`` (a click's ``.then``, typing in row or column) to outline the token that row and
        column name, in the view lane; ``options`` are the listener's own."""
        return listener(TokensView.handler(self.show_token, len(self.outputs)),
                        [self.tokens, self.edited, self.row, self.col], self.outputs, **VIEW_LANE, **options)
