"""The web page of ``matte serve`` (HTML, JavaScript and CSS; a package so that the wheel ships it)."""
