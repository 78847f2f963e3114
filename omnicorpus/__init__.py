"""omnicorpus: interleaved image-text corpora from web crawls.

Importing the package is cheap: it imports neither Ray nor torch (nor trafilatura); those load where used.
"""

__version__ = "0.1.0"
