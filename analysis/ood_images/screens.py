"""Screenshots of UI-like layouts drawn with Pillow: windows, dialogs, forms, editors, chats, pages.

Each layout is drawn on a 192-pixel screen in a light and a dark theme (with its own accent
colour), then shrunk to the model's size like a screenshot thumbnail.
"""

from dataclasses import dataclass

from PIL import Image, ImageDraw

from analysis.ood_images.common import MONO, SANS, font, rng

SCREEN = 192
WORDS = ("File Edit View Help Open Save Settings Profile Search Inbox Photos Music Home About "
         "Contact Login Cancel Apply Name Email Password Submit Share Delete Rename Update").split()


@dataclass(frozen=True)
class Theme:
    background: str
    panel: str
    text: str
    muted: str
    accent: str


ACCENTS = ("#1a73e8", "#e8710a", "#188038", "#9334e6", "#d93025", "#00897b", "#c2185b", "#5f6368")


def theme(dark: bool, i: int) -> Theme:
    accent = ACCENTS[i % len(ACCENTS)]
    if dark:
        return Theme("#202124", "#303134", "#e8eaed", "#9aa0a6", accent)
    return Theme("#ffffff", "#f1f3f4", "#202124", "#80868b", accent)


def words(g, n: int) -> str:
    return " ".join(g.choice(WORDS, n))


def button(d, box, label: str, fill: str, text: str, px: int = 11):
    d.rounded_rectangle(box, radius=4, fill=fill)
    d.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), label, font=font(SANS, px), fill=text, anchor="mm")


def title_bar(d, t: Theme, title: str):
    d.rectangle((0, 0, SCREEN, 20), fill=t.panel)
    for k, colour in enumerate(("#ff5f57", "#febc2e", "#28c840")):
        d.ellipse((6 + 14 * k, 5, 16 + 14 * k, 15), fill=colour)
    d.text((SCREEN / 2, 10), title, font=font(SANS, 10), fill=t.text, anchor="mm")


def text_lines(d, g, x: int, y: int, n: int, t: Theme, px: int = 10, step: int = 15):
    for k in range(n):
        fill = t.muted if k % 3 else t.text
        d.text((x, y + k * step), words(g, int(g.integers(2, 5))), font=font(SANS, px), fill=fill)


def window(d, g, t):
    title_bar(d, t, "Document")
    d.rectangle((0, 20, SCREEN, 36), fill=t.background)
    d.text((6, 22), "File  Edit  View  Help", font=font(SANS, 10), fill=t.text)
    d.line((0, 36, SCREEN, 36), fill=t.muted)
    text_lines(d, g, 10, 44, 9, t)


def dialog(d, g, t):
    d.rectangle((0, 0, SCREEN, SCREEN), fill=t.muted)
    d.rounded_rectangle((20, 50, 172, 150), radius=8, fill=t.background, outline=t.text)
    d.text((32, 62), "Save changes?", font=font(SANS, 13), fill=t.text)
    d.text((32, 86), "Your edits will be lost.", font=font(SANS, 10), fill=t.muted)
    button(d, (40, 116, 100, 138), "Cancel", t.panel, t.text)
    button(d, (108, 116, 162, 138), "Save", t.accent, "white")


def menu(d, g, t):
    title_bar(d, t, "Editor")
    d.text((6, 24), "File   Edit   View", font=font(SANS, 11), fill=t.text)
    d.rectangle((4, 40, 110, 180), fill=t.panel, outline=t.muted)
    for k, item in enumerate(("New", "Open…", "Save", "Save as…", "Export", "Print", "Close", "Quit")):
        if k == 2:
            d.rectangle((5, 43 + 17 * k, 109, 58 + 17 * k), fill=t.accent)
        d.text((12, 44 + 17 * k), item, font=font(SANS, 11), fill="white" if k == 2 else t.text)
        d.text((104, 44 + 17 * k), f"^{item[0]}", font=font(SANS, 9), fill=t.muted, anchor="ra")


def form(d, g, t):
    d.text((14, 10), "Create account", font=font(SANS, 15), fill=t.text)
    for k, label in enumerate(("Name", "Email", "Password")):
        y = 40 + 40 * k
        d.text((14, y), label, font=font(SANS, 10), fill=t.muted)
        d.rounded_rectangle((14, y + 14, 178, y + 32), radius=3, fill=t.panel, outline=t.muted)
        d.text((20, y + 17), "••••••" if k == 2 else words(g, 1).lower(), font=font(SANS, 10), fill=t.text)
    d.rectangle((14, 160, 24, 170), outline=t.text)
    d.text((30, 159), "I agree", font=font(SANS, 10), fill=t.text)
    button(d, (110, 156, 178, 178), "Submit", t.accent, "white")


def editor(d, g, t):
    code = ("import numpy as np", "", "def psnr(a, b):", "    mse = ((a - b) ** 2).mean()",
            "    return 10 * log10(255**2 / mse)", "", "class Model:", "    def __init__(self):",
            "        self.levels = (8, 8, 8)", "# TODO: bf16", "x = psnr(x_hat, x)")
    d.rectangle((0, 0, SCREEN, 16), fill=t.panel)
    d.text((6, 2), "model.py ×", font=font(SANS, 10), fill=t.text)
    d.rectangle((0, 16, 24, SCREEN), fill=t.panel)
    for k, line in enumerate(code):
        y = 20 + 15 * k
        d.text((20, y), str(k + 1), font=font(MONO, 10), fill=t.muted, anchor="ra")
        keyword = line.split(" ")[0] in ("def", "class", "import")
        colour = t.muted if line.startswith("#") else (t.accent if keyword else t.text)
        d.text((30, y), line, font=font(MONO, 10), fill=colour)


def chat(d, g, t):
    title_bar(d, t, "Chat")
    y = 28
    for k in range(5):
        mine = k % 2 == 1
        text = words(g, int(g.integers(1, 4)))
        w = font(SANS, 10).getlength(text) + 14
        x0 = SCREEN - 8 - w if mine else 8
        d.rounded_rectangle((x0, y, x0 + w, y + 22), radius=9, fill=t.accent if mine else t.panel)
        d.text((x0 + 7, y + 5), text, font=font(SANS, 10), fill="white" if mine else t.text)
        y += 30
    d.rounded_rectangle((6, 168, 186, 188), radius=9, outline=t.muted)
    d.text((14, 172), "Type a message", font=font(SANS, 10), fill=t.muted)


def webpage(d, g, t):
    d.rectangle((0, 0, SCREEN, 26), fill=t.accent)
    d.text((8, 6), "Studio", font=font(f"{SANS}-Bold", 12), fill="white")
    d.text((80, 8), "Home  Docs  Blog", font=font(SANS, 10), fill="white")
    d.text((12, 38), "Build faster", font=font(f"{SANS}-Bold", 18), fill=t.text)
    text_lines(d, g, 12, 64, 2, t, step=13)
    for k in range(3):
        x = 8 + 60 * k
        d.rounded_rectangle((x, 100, x + 54, 182), radius=5, fill=t.panel)
        d.rectangle((x, 100, x + 54, 130), fill=ACCENTS[(k + 3) % len(ACCENTS)])
        d.text((x + 5, 136), words(g, 1), font=font(SANS, 9), fill=t.text)
        d.text((x + 5, 152), words(g, 1).lower(), font=font(SANS, 8), fill=t.muted)


def file_manager(d, g, t):
    title_bar(d, t, "Files")
    d.rectangle((0, 20, 52, SCREEN), fill=t.panel)
    for k, place in enumerate(("Home", "Desktop", "Music", "Photos", "Trash")):
        d.text((6, 28 + 18 * k), place, font=font(SANS, 9), fill=t.text)
    for k in range(9):
        x, y = 62 + 42 * (k % 3), 30 + 52 * (k // 3)
        d.rectangle((x, y + 6, x + 32, y + 30), fill="#f6c343" if k % 4 else t.accent)
        d.rectangle((x, y, x + 14, y + 8), fill="#f6c343" if k % 4 else t.accent)
        d.text((x + 16, y + 34), words(g, 1).lower(), font=font(SANS, 8), fill=t.text, anchor="ma")


def settings(d, g, t):
    d.text((12, 10), "Settings", font=font(SANS, 16), fill=t.text)
    for k in range(7):
        y = 40 + 21 * k
        on = bool(g.integers(0, 2))
        d.text((12, y), words(g, 1), font=font(SANS, 11), fill=t.text)
        d.rounded_rectangle((146, y, 176, y + 14), radius=7, fill=t.accent if on else t.muted)
        d.ellipse((162, y + 1, 174, y + 13) if on else (148, y + 1, 160, y + 13), fill="white")
        d.line((12, y + 18, 180, y + 18), fill=t.panel)


def terminal(d, g, t):
    lines = ("$ python -m qkvae.inference", "image=cat.jpg size=96", "psnr=29.41dB -> out.png",
             "$ ls runs/", "evaluate  qkvae-1m  tuned", "$ git status", "On branch main",
             "nothing to commit", "$ pytest -q", "........ [100%]", "42 passed in 3.1s", "$ _")
    for k, line in enumerate(lines):
        d.text((4, 4 + 15 * k), line, font=font(MONO, 10), fill=t.accent if line.startswith("$") else t.text)


def spreadsheet(d, g, t):
    d.rectangle((0, 0, SCREEN, 18), fill=t.panel)
    for c in range(5):
        d.text((24 + 34 * c + 17, 3), "ABCDE"[c], font=font(SANS, 9), fill=t.text, anchor="ma")
    for r in range(10):
        y = 18 + 17 * r
        d.text((10, y + 3), str(r + 1), font=font(SANS, 9), fill=t.muted, anchor="ma")
        for c in range(5):
            d.rectangle((24 + 34 * c, y, 58 + 34 * c, y + 17), outline=t.muted)
            d.text((55 + 34 * c, y + 3), f"{g.uniform(0, 999):.0f}", font=font(SANS, 9), fill=t.text, anchor="ra")


def mobile_list(d, g, t):
    d.rectangle((0, 0, SCREEN, 14), fill=t.accent)
    d.text((6, 1), "9:41", font=font(SANS, 9), fill="white")
    d.text((186, 1), "100%", font=font(SANS, 9), fill="white", anchor="ra")
    for k in range(6):
        y = 20 + 28 * k
        d.ellipse((8, y, 30, y + 22), fill=ACCENTS[(k + 1) % len(ACCENTS)])
        d.text((19, y + 11), chr(65 + k), font=font(SANS, 10), fill="white", anchor="mm")
        d.text((38, y + 1), words(g, 2), font=font(SANS, 10), fill=t.text)
        d.text((38, y + 13), words(g, 3).lower(), font=font(SANS, 8), fill=t.muted)


def login(d, g, t):
    d.rectangle((0, 0, SCREEN, SCREEN), fill=t.accent)
    d.rounded_rectangle((26, 30, 166, 170), radius=10, fill=t.background)
    d.text((96, 44), "Sign in", font=font(f"{SANS}-Bold", 14), fill=t.text, anchor="ma")
    for k, hint in enumerate(("Username", "Password")):
        d.rounded_rectangle((40, 72 + 30 * k, 152, 92 + 30 * k), radius=3, outline=t.muted)
        d.text((46, 76 + 30 * k), hint, font=font(SANS, 10), fill=t.muted)
    button(d, (40, 136, 152, 156), "Log in", t.accent, "white")


def dashboard(d, g, t):
    d.rectangle((0, 0, SCREEN, SCREEN), fill=t.panel)
    for k, label in enumerate(("Users", "Revenue")):
        x = 8 + 90 * k
        d.rounded_rectangle((x, 8, x + 84, 60), radius=6, fill=t.background)
        d.text((x + 6, 12), label, font=font(SANS, 9), fill=t.muted)
        d.text((x + 6, 28), f"{g.integers(100, 9999):,}", font=font(f"{SANS}-Bold", 16), fill=t.text)
    d.rounded_rectangle((8, 68, 184, 184), radius=6, fill=t.background)
    for k, h in enumerate(g.integers(10, 90, 10)):
        d.rectangle((18 + 16 * k, 176 - h, 28 + 16 * k, 176), fill=t.accent)


def inbox(d, g, t):
    d.rectangle((0, 0, SCREEN, 24), fill=t.panel)
    d.rounded_rectangle((30, 4, 186, 20), radius=8, fill=t.background)
    d.text((38, 6), "Search mail", font=font(SANS, 9), fill=t.muted)
    for k in range(8):
        y = 28 + 20 * k
        d.text((8, y), words(g, 1), font=font(f"{SANS}-Bold" if k < 3 else SANS, 10), fill=t.text)
        d.text((70, y + 1), words(g, 2).lower(), font=font(SANS, 9), fill=t.muted)
        d.text((186, y + 1), f"{int(g.integers(1, 12))}:{int(g.integers(0, 60)):02d}", font=font(SANS, 8),
               fill=t.muted, anchor="ra")
        d.line((0, y + 17, SCREEN, y + 17), fill=t.panel)


LAYOUTS = (window, dialog, menu, form, editor, chat, webpage, file_manager, settings, terminal,
           spreadsheet, mobile_list, login, dashboard, inbox)


def screen(layout, dark: bool, i: int) -> Image.Image:
    t = theme(dark, i + dark)
    im = Image.new("RGB", (SCREEN, SCREEN), t.background)
    layout(ImageDraw.Draw(im), rng(f"{layout.__name__}_{dark}"), t)
    return im


def images() -> dict[str, Image.Image]:
    return {f"{layout.__name__}_{('light', 'dark')[dark]}": screen(layout, bool(dark), i)
            for i, layout in enumerate(LAYOUTS) for dark in (0, 1)}
