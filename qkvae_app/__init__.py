"""The Gradio app: ``demo.build_demo(settings)`` builds the page from one class per tab
(``*_tab.py``) over a ``studio.Studio`` loaded from the settings; ``app.py`` launches it.

Below the tabs, everything is plain Python over numpy/torch and the ``qkvae`` / ``analysis``
packages (settings, token editing, the dataset pass, Explore's uploads, text panels, served
files), testable without a server; each tab's handlers are callable without one too.
"""
