"""The printable QR poster of a station: A4, in Chinese, with the station's name and the
services a worker can record, and the signed scan link as a QR code. PNG, and PDF (the same
image, through Pillow). Chinese needs a CJK font: the system's is found with fontconfig
(Debian's fonts-wqy-microhei); without one the poster falls back to English text and says so
in the log, rather than printing empty boxes."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M

from schemas.stations import Station
from services.scan_desk import services_offered
from services.scan_pages import SERVICES_ZH

log = logging.getLogger(__name__)

A4_PX = (1240, 1754)  # A4 at 150 dpi
DPI = 150
MARGIN_PX = 90
QR_PX = 760
TITLE_PT, NAME_PT, TEXT_PT, SMALL_PT = 78, 52, 36, 24
LINE_GAP_PX = 18
INK = (26, 26, 26)
ACCENT = (0, 114, 178)  # Okabe-Ito blue, as the dashboard
FONT_QUERY = ":lang=zh-cn"
FONT_LOOKUP_TIMEOUT_S = 5
SERVICES_PER_LINE = 4


@lru_cache(maxsize=1)
def cjk_font_path() -> Path | None:
    """A font with Chinese glyphs, from fontconfig; None when the system has none."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(
            [fc_match, "-f", "%{file}", FONT_QUERY],
            capture_output=True,
            text=True,
            timeout=FONT_LOOKUP_TIMEOUT_S,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = Path(found) if found else None
    if path is None or not path.exists() or not _has_chinese(path):
        return None
    return path


def _has_chinese(path: Path) -> bool:
    font = ImageFont.truetype(str(path), TEXT_PT)
    return font.getmask("驿").getbbox() is not None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = cjk_font_path()
    return ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size)


def _texts(station: Station) -> tuple[str, str, str]:
    services = services_offered(station)
    if cjk_font_path() is not None:
        listed = "  ".join(SERVICES_ZH.get(s, s) for s in services)
        return "户外劳动者驿站 · 扫码登记", listed, "微信或手机相机扫码 · 无需填写个人信息"
    log.warning("no CJK font found (install fonts-wqy-microhei): poster text is in English")
    listed = "  ".join(s.replace("_", " ") for s in services)
    return (
        "Rest station - scan to check in",
        listed,
        "Scan with your phone camera; no personal data",
    )


def poster_image(station: Station, url: str) -> Image.Image:
    title, services, footer = _texts(station)
    image = Image.new("RGB", A4_PX, "white")
    draw = ImageDraw.Draw(image)
    width = A4_PX[0]
    y = MARGIN_PX

    def centred(text: str, size: int, fill: tuple[int, int, int] = INK) -> None:
        nonlocal y
        font = _font(size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        draw.text(((width - (right - left)) / 2, y), text, font=font, fill=fill)
        y += bottom - top + LINE_GAP_PX

    centred(title, TITLE_PT, ACCENT)
    y += LINE_GAP_PX
    centred(station.name, NAME_PT)
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=2)
    code.add_data(url)
    code.make(fit=True)
    qr = code.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    qr = qr.resize((QR_PX, QR_PX), Image.Resampling.NEAREST)
    image.paste(qr, ((width - QR_PX) // 2, y + LINE_GAP_PX))
    y += QR_PX + 3 * LINE_GAP_PX
    words = services.split("  ")
    for start in range(0, len(words), SERVICES_PER_LINE):
        centred("  ".join(words[start : start + SERVICES_PER_LINE]), TEXT_PT)
    y += LINE_GAP_PX
    centred(footer, TEXT_PT, ACCENT)
    centred(f"{station.station_id}  {url}", SMALL_PT)
    return image


def poster_png(station: Station, url: str) -> bytes:
    buffer = io.BytesIO()
    poster_image(station, url).save(buffer, "PNG", dpi=(DPI, DPI))
    return buffer.getvalue()


def poster_pdf(station: Station, url: str) -> bytes:
    buffer = io.BytesIO()
    poster_image(station, url).save(buffer, "PDF", resolution=DPI)
    return buffer.getvalue()
