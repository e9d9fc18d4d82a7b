"""``python -m redheart.serving [--model M] [--host H] [--port P] [--workers N]``: the REST server."""

from .cli import serve_main

if __name__ == "__main__":
    serve_main()
