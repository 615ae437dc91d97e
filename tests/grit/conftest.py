"""GRIT test data made on the spot: an image server on 127.0.0.1 and GRIT-like parquet metadata.

The metadata has good rows (images of known sizes), a dead URL (404), a refused URL (a loopback
port where nothing listens) and a URL that serves bytes that are not an image. Expected boxes are
derived here from the known sizes and img2dataset's documented keep_ratio rule (smallest side to
``IMAGE_SIZE`` only when bigger), independently of the code under test.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

IMAGE_SIZE = 240
SAMPLES_PER_SHARD = 4


def make_jpeg(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class ImageServer:
    """A real HTTP server on 127.0.0.1 serving ``/<name>`` from a dict; anything else is 404."""

    def __init__(self, files: dict[str, bytes]) -> None:
        files_ = files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files_.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def refused_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Row:
    name: str
    caption: str
    ref_exps: list[list[float]]
    size: tuple[int, int] | None  # served image size; None = not served as an image
    resized: tuple[int, int] | None = None  # expected downloaded size
    kind: str = "good"  # good | dead | refused | not-image


def grit_rows() -> list[Row]:
    long_caption = "a dog " * 150 + "on a sofa."
    return [
        # 640x480 → smallest side 480 > 240 → scale 0.5 → 320x240
        Row("a.jpg", "A dog on a sofa.", [[2, 5, 0.25, 0.5, 0.75, 1.0, 0.9], [11, 15, 0.0, 0.0, 0.5, 0.5, 0.8],
                                          [0, 5, 0.1, 0.1, 0.2, 0.2, 0.7]], (640, 480), (320, 240)),
        # 200x100: smaller than 240 → kept as is
        Row("b.jpg", "Sunflowers.", [[0, 10, 0.1, 0.2, 0.9, 0.8, 0.9]], (200, 100), (200, 100)),
        Row("dead.jpg", "A cat.", [[2, 5, 0.0, 0.0, 1.0, 1.0, 0.9]], None, kind="dead"),
        Row("refused.jpg", "A bird.", [[2, 6, 0.0, 0.0, 1.0, 1.0, 0.9]], None, kind="refused"),
        # 480x960 → scale 0.5 → 240x480; one invalid span (past the caption), one good ref
        Row("c.jpg", "Boats in harbor", [[0, 5, 0.5, 0.25, 1.0, 0.5, 0.9], [5, 99, 0.0, 0.0, 1.0, 1.0, 0.9]],
            (480, 960), (240, 480)),
        Row("notimage.jpg", "Clouds.", [[0, 6, 0.0, 0.0, 1.0, 1.0, 0.9]], None, kind="not-image"),
        # non-ASCII phrase only → no region left
        Row("d.jpg", "Café.", [[0, 4, 0.0, 0.0, 1.0, 1.0, 0.9]], (300, 200), (300, 200)),
        Row("e.jpg", long_caption, [[2, 5, 0.0, 0.0, 1.0, 1.0, 0.9]], (100, 100), (100, 100)),
    ]


@dataclass
class GritData:
    metadata: Path
    rows: list[Row]
    server: ImageServer


def write_metadata(path: Path, rows: list[Row], server: ImageServer, dead_port: int) -> Path:
    urls = []
    for r in rows:
        if r.kind == "refused":
            urls.append(f"http://127.0.0.1:{dead_port}/{r.name}")
        elif r.kind == "dead":
            urls.append(server.url("missing/" + r.name))
        else:
            urls.append(server.url(r.name))
    table = pa.table({
        "key": [f"grit{i:04d}" for i in range(len(rows))],  # GRIT's own key: reserved by img2dataset
        "clip_similarity_vitb32": [0.3] * len(rows),
        "clip_similarity_vitl14": [0.31] * len(rows),
        "id": list(range(1000, 1000 + len(rows))),
        "url": urls,
        "caption": [r.caption for r in rows],
        "width": [r.size[0] if r.size else 10 for r in rows],
        "height": [r.size[1] if r.size else 10 for r in rows],
        "noun_chunks": [[[*ref[:6], 0.5] for ref in r.ref_exps] for r in rows],
        "ref_exps": [r.ref_exps for r in rows],
    })
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def grit_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GritData]:
    rows = grit_rows()
    files = {r.name: make_jpeg(*r.size) for r in rows if r.size is not None}
    files["notimage.jpg"] = b"this is not an image at all" * 10
    server = ImageServer(files)
    root = tmp_path_factory.mktemp("grit_meta")
    try:
        meta = write_metadata(root / "grit_part0.parquet", rows, server, refused_port())
        yield GritData(meta, rows, server)
    finally:
        server.close()


@pytest.fixture(scope="session")
def expected_records() -> dict[str, dict[str, Any]]:
    """caption → expected size and regions under the default filters (from the rows above)."""
    return {
        "A dog on a sofa.": {"width": 320, "height": 240, "regions": [
            {"bbox": [80.0, 120.0, 240.0, 240.0], "phrase": "dog", "tokens_positive": [[2, 5]]},
            {"bbox": [0.0, 0.0, 160.0, 120.0], "phrase": "sofa", "tokens_positive": [[11, 15]]},
        ]},
        "Sunflowers.": {"width": 200, "height": 100, "regions": [
            {"bbox": [20.0, 20.0, 180.0, 80.0], "phrase": "Sunflowers", "tokens_positive": [[0, 10]]},
        ]},
        "Boats in harbor": {"width": 240, "height": 480, "regions": [
            {"bbox": [120.0, 120.0, 240.0, 240.0], "phrase": "Boats", "tokens_positive": [[0, 5]]},
        ]},
    }
