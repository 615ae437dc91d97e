"""Looking at ODVG data: images with boxes, phrases and captions, and the FiftyOne App.

* :mod:`odvgkit.browse.scene` turns a record into what to draw (pure, no pixels).
* :mod:`odvgkit.browse.draw` draws a scene onto an image with Pillow only (no mmdet, no system font).
* :mod:`odvgkit.browse.render` renders a sample of a file (optionally beside predictions) to a folder.
* :mod:`odvgkit.browse.fiftyone_io` loads ODVG into a FiftyOne dataset and exports it back.
* :mod:`odvgkit.browse.app` starts the database server and the FiftyOne App on the loopback address.

Only :mod:`fiftyone_io` and :mod:`app` need the ``browse`` extra, and they import FiftyOne lazily.
"""
