"""The codec table: every codec is one record, and everything else (extension choice, default names,
allowed containers, encoder arguments, help and summary texts) is derived from it consistently."""

from __future__ import annotations

from pathlib import Path

import pytest

from mattecli.errors import MatteError
from mattecli.video.formats import CODEC_TABLE, CODECS, codec_help, resolve_output

SOURCE = Path("clip.mp4")


def _composite(codec) -> bool:
    return codec.background == "required"


def test_codec_names_are_the_table_keys():
    assert CODECS == tuple(CODEC_TABLE) == ("prores", "vp9", "png", "h264", "matte")
    assert all(name == record.name for name, record in CODEC_TABLE.items())


@pytest.mark.parametrize("codec", CODEC_TABLE.values(), ids=CODECS)
def test_extensions_a_codec_claims_choose_it(codec, tmp_path):
    for suffix in codec.chosen_by:
        output = tmp_path / "out" if suffix == "" else tmp_path / f"out{suffix}"
        fmt = resolve_output(SOURCE, output, None, _composite(codec))
        assert fmt.codec == codec.name
        assert suffix == "" or suffix in codec.suffixes


def test_every_extension_is_claimed_by_exactly_one_codec():
    claimed = [suffix for codec in CODEC_TABLE.values() for suffix in codec.chosen_by]
    assert len(claimed) == len(set(claimed))
    containers = {suffix for codec in CODEC_TABLE.values() for suffix in codec.suffixes}
    assert containers == set(claimed) - {""}


@pytest.mark.parametrize("codec", CODEC_TABLE.values(), ids=CODECS)
def test_default_output_name_is_one_the_codec_can_write(codec):
    fmt = resolve_output(SOURCE, None, codec.name, _composite(codec))
    assert fmt.codec == codec.name and fmt.path.name.startswith("clip.")
    if codec.sequence:
        assert fmt.is_sequence and fmt.path.suffix == ".matte"
    else:
        assert fmt.path.suffix in codec.suffixes


@pytest.mark.parametrize("codec", CODEC_TABLE.values(), ids=CODECS)
def test_every_allowed_container_builds_an_encoder(codec, tmp_path):
    for suffix in codec.suffixes or ("",):
        for composite in {"never": [False], "optional": [False, True], "required": [True]}[codec.background]:
            for width in (64, 65):
                fmt = resolve_output(SOURCE, tmp_path / f"o{suffix}", codec.name, composite, width)
                assert fmt.encoder_args[:1] == ["-c:v"]
                expected = "gray" if codec.layout == "gray" else ("rgb" if composite else "rgba")
                assert fmt.layout == expected
                assert fmt.even == ("libx264" in fmt.encoder_args)  # H.264 4:2:0 alone needs even sides
                assert (fmt.muxer == "mp4") == ("+faststart" in fmt.encoder_args)


@pytest.mark.parametrize("codec", CODEC_TABLE.values(), ids=CODECS)
def test_background_rule_is_enforced(codec, tmp_path):
    output = tmp_path / f"o{codec.suffixes[0] if codec.suffixes else ''}"
    if codec.background == "required":
        with pytest.raises(MatteError, match="has no alpha channel: add --bg"):
            resolve_output(SOURCE, output, codec.name, False)
    if codec.background == "never":
        with pytest.raises(MatteError, match="it takes no --bg"):
            resolve_output(SOURCE, output, codec.name, True)


def test_wrong_container_names_the_allowed_ones(tmp_path):
    for codec in CODEC_TABLE.values():
        if codec.sequence:
            continue
        with pytest.raises(MatteError) as error:
            resolve_output(SOURCE, tmp_path / "o.avi", codec.name, _composite(codec))
        assert str(error.value).endswith(", ".join(sorted(codec.suffixes)))


def test_unknown_extension_lists_every_claimed_one(tmp_path):
    with pytest.raises(MatteError) as error:
        resolve_output(SOURCE, tmp_path / "o.avi", None, False)
    for codec in CODEC_TABLE.values():
        for suffix in codec.chosen_by:
            assert (suffix or "a folder") in str(error.value)


def test_help_and_summaries_cover_every_codec():
    text = codec_help()
    for codec in CODEC_TABLE.values():
        assert f"{codec.name} ({codec.help})" in text
        cut_out, composite = codec.written
        assert cut_out and composite
