"""The app's typed tools (``qkvae_app.mcp_tools``), called directly, and the app as an MCP server:
``GRADIO_MCP_SERVER=True python app.py``, reached with the ``mcp`` package's clients (streamable
HTTP and SSE), and its API page, which lists the same five tools."""

import asyncio
import base64
import io
import json
import urllib.request

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from qkvae import load_image, load_qkvae
from qkvae.image import to_uint8
from qkvae_app import checkpoints
from qkvae_app.checkpoints import CheckpointCache
from qkvae_app.mcp_tools import Tools
from qkvae_app.settings import EXAMPLES_DIR, Settings
from qkvae_app.studio import Studio
from tests.helpers import STL10_SAMPLES, serving

TOOLS = {"tokenize_image", "decode_ids", "reconstruct_image", "stress_image", "compare_image"}
CAT = EXAMPLES_DIR / "photo-cat.png"


@pytest.fixture(scope="module")
def server(weights_dir, tmp_path_factory):
    """The URL of ``python app.py`` serving the seeded test weights, with its MCP server on."""
    log = tmp_path_factory.mktemp("mcp-server") / "app.log"
    with serving(weights_dir, log, GRADIO_MCP_SERVER="True") as url:
        yield url


def _session(transport):
    """Run ``work(session)`` in an initialized MCP client session over ``transport``."""
    async def run(work):
        async with transport as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            return await work(session)
    return lambda work: asyncio.run(run(work))


def _data_uri(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _call(server, name: str, arguments: dict):
    return _session(streamable_http_client(f"{server}gradio_api/mcp/"))(lambda s: s.call_tool(name, arguments))


def test_a_browser_at_the_mcp_url_gets_gradios_page_with_the_client_configurations(server):
    with urllib.request.urlopen(f"{server}gradio_api/mcp/") as page:
        html = page.read().decode()
    assert "Gradio MCP Server" in html and f"{server}gradio_api/mcp/" in html and "mcp-remote" in html


def test_an_mcp_client_lists_the_tools_with_their_schemas(server):
    tools = _session(streamable_http_client(f"{server}gradio_api/mcp/"))(lambda s: s.list_tools()).tools
    assert {t.name for t in tools} == TOOLS
    by_name = {t.name: t for t in tools}
    tokenize = by_name["tokenize_image"]
    assert tokenize.description.startswith("Encode an image into QKVAE token ids")
    assert tokenize.inputSchema["required"] == ["image"]
    assert tokenize.inputSchema["properties"]["mode"]["enum"] == ["resize", "center_crop", "pad"]
    assert "fit to the model's square" in tokenize.inputSchema["properties"]["image"]["description"]
    assert by_name["decode_ids"].inputSchema["properties"]["ids"]["items"] == {"type": "array", "items": {"type": "integer"}}
    assert set(by_name["compare_image"].inputSchema["required"]) == {"image", "weights"}


def test_tokenize_over_mcp_gives_model_encode(server, model):
    result = _call(server, "tokenize_image", {"image": _data_uri(CAT), "mode": "center_crop"})
    assert not result.isError
    ids = np.array(json.loads(result.content[0].text))
    expected = model.encode(load_image(CAT, mode="center_crop")[None]).numpy().reshape(48, 48)
    assert ids.shape == (48, 48) and np.array_equal(ids, expected)


def test_decode_over_mcp_gives_model_decode_as_an_image(server, model):
    ids = model.encode(load_image(CAT)[None])
    result = _call(server, "decode_ids", {"ids": ids.numpy().reshape(48, 48).tolist()})
    image, url = result.content
    assert image.type == "image" and image.mimeType == "image/png" and url.text.startswith("Image URL: http")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(image.data))))
    assert np.array_equal(decoded, to_uint8(model.decode(ids))[0])


def test_reconstruct_over_mcp_gives_the_image_and_its_scores(server):
    result = _call(server, "reconstruct_image", {"image": _data_uri(CAT)})
    image, _, scores = result.content
    assert image.type == "image"
    scores = json.loads(scores.text)  # JSON, not a Python repr
    assert set(scores) == {"psnr", "ssim", "ood_score", "verdict", "explanation"} and scores["psnr"] > 0
    assert scores["verdict"] is None  # the shipped OOD reference is for other weights than the test's


def test_compare_over_mcp_gives_the_comparison_as_json(server, weights_dir):
    result = _call(server, "compare_image", {"image": _data_uri(CAT), "weights": str(weights_dir)})
    image, _, comparison = result.content
    assert image.type == "image" and not result.isError
    c = json.loads(comparison.text)
    assert c["b"] == weights_dir.name and c["psnr_a"] == c["psnr_b"] and c["token_agreement"] == 1.0


def test_bad_input_over_mcp_is_a_one_line_tool_error(server):
    result = _call(server, "decode_ids", {"ids": [[1, 2, 3]]})
    assert result.isError and "expected 2304 token ids (48x48), got 3" in result.content[0].text


def test_the_sse_transport_lists_the_same_tools(server):
    tools = _session(sse_client(f"{server}gradio_api/mcp/sse"))(lambda s: s.list_tools()).tools
    assert {t.name for t in tools} == TOOLS


def test_the_api_page_documents_the_tools_only_and_the_ui_stays_callable(server):
    client = Client(server, verbose=False, analytics_enabled=False, download_files=False)
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {f"/{t}" for t in TOOLS}
    assert client.predict(handle_file(CAT), "resize", api_name="/reconstruct")[3] > 0  # the tab's endpoint, undocumented
    ids = client.predict(handle_file(CAT), "resize", api_name="/tokenize_image")
    assert np.array(ids).shape == (48, 48)


@pytest.fixture(scope="module")
def tools(weights_dir):
    return Tools(Studio.load(Settings(weights=weights_dir, data=STL10_SAMPLES)), CheckpointCache(device="cpu"))


def test_compare_against_the_same_weights_agrees_everywhere(tools, weights_dir):
    image, c = tools.compare_image(str(CAT), str(weights_dir))
    c = json.loads(c)
    assert c["psnr_a"] == c["psnr_b"] and c["token_agreement"] == 1.0 and c["digit_agreement"] == [1.0] * 5
    assert Image.open(image.path).size == (3 * 96, 96)  # the input, A's and B's reconstructions


def test_compare_loads_checkpoint_b_once_into_the_cache_it_shares(tools, weights_dir, monkeypatch):
    cache = CheckpointCache(device="cpu")
    loads = []
    monkeypatch.setattr(checkpoints, "load_qkvae", lambda *args: loads.append(args[0]) or load_qkvae(*args))
    first, second = (Tools(tools.studio, cache).compare_image(str(CAT), str(weights_dir))[1] for _ in range(2))
    assert first == second and loads == [str(weights_dir)] and len(cache) == 1


def test_compare_explains_weights_it_cannot_load(tools, tmp_path):
    with pytest.raises(gr.Error, match="no model.safetensors in"):
        tools.compare_image(str(CAT), str(tmp_path))


@pytest.mark.slow
def test_stress_summarises_the_five_curves(tools, model):
    s = json.loads(tools.stress_image(str(CAT)))
    assert set(s) == {"name", "psnr", "scale", "shift", "corruption", "quantization", "token_noise"}
    assert s["scale"]["1x"] == s["psnr"] and s["shift"]["0 px"] == 1.0
    assert all(len(c["psnr"]) == len(c["tokens_changed"]) == 5 for c in s["corruption"].values())
