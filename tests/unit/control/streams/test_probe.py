"""Reading SHOUTcast and Icecast admin documents: server generation, now-playing figures,
and documents that must not be trusted."""

from __future__ import annotations

from control.streams.probe import ProbeResult, parse_icecast_stats, parse_shoutcast_stats

# What sc_serv 1.9.8 answers to admin.cgi?mode=viewxml (trimmed): an internal DTD, no entities.
SHOUTCAST_V1 = b"""<?xml version="1.0" standalone="yes" ?>
<!DOCTYPE SHOUTCASTSERVER [<!ELEMENT SHOUTCASTSERVER (CURRENTLISTENERS,PEAKLISTENERS,
MAXLISTENERS,REPORTEDLISTENERS,AVERAGETIME,SERVERGENRE,SERVERURL,SERVERTITLE,SONGTITLE,
SONGURL,IRC,ICQ,AIM,WEBHITS,STREAMHITS,STREAMSTATUS,BITRATE,CONTENT,VERSION,WEBDATA,LISTENERS,
SONGHISTORY)>]>
<SHOUTCASTSERVER><CURRENTLISTENERS>3</CURRENTLISTENERS><PEAKLISTENERS>9</PEAKLISTENERS>
<SERVERTITLE>Friday Night</SERVERTITLE><SONGTITLE>Daft Punk - Around the World</SONGTITLE>
<STREAMSTATUS>1</STREAMSTATUS><BITRATE>128</BITRATE><CONTENT>audio/mpeg</CONTENT>
<VERSION>1.9.8</VERSION></SHOUTCASTSERVER>"""


def shoutcast(fields: str) -> bytes:
    return f"<?xml version='1.0'?><SHOUTCASTSERVER>{fields}</SHOUTCASTSERVER>".encode()


def test_shoutcast_v1_document_with_its_dtd():
    expected = ProbeResult("shoutcast1", None, "Daft Punk - Around the World", 128, 3)
    assert parse_shoutcast_stats(SHOUTCAST_V1, sid=1) == expected  # VERSION wins over the form
    assert parse_shoutcast_stats(SHOUTCAST_V1, sid=None) == expected


def test_shoutcast_v2_by_version_or_by_the_sid_form_that_answered():
    v2 = shoutcast("<VERSION>2.6.1.777 (posix(linux x64))</VERSION><SONGTITLE>A - B</SONGTITLE>")
    assert parse_shoutcast_stats(v2, sid=3) == ProbeResult("shoutcast2", 3, "A - B", None, None)
    assert parse_shoutcast_stats(v2, sid=None) == ProbeResult("shoutcast2", 1, "A - B", None, None)

    unversioned = shoutcast("<BITRATE>96</BITRATE>")
    assert parse_shoutcast_stats(unversioned, sid=1) == ProbeResult("shoutcast2", 1, None, 96, None)
    assert parse_shoutcast_stats(unversioned, None) == ProbeResult(
        "shoutcast1", None, None, 96, None
    )


def test_shoutcast_without_a_source_connected_reports_no_title():
    idle = shoutcast(
        "<STREAMSTATUS>0</STREAMSTATUS><SONGTITLE>Old</SONGTITLE><VERSION>1.9.8</VERSION>"
    )
    assert parse_shoutcast_stats(idle, None) == ProbeResult("shoutcast1", None, None, None, None)


def test_documents_that_are_not_admin_pages_are_refused():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE SHOUTCASTSERVER [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><SHOUTCASTSERVER>&b;</SHOUTCASTSERVER>'
    )
    for body in (bomb, b"<html><body>hello</body></html>", b"not xml", b"", None):
        assert parse_shoutcast_stats(body, 1) is None
        assert parse_icecast_stats(body, "/live") is None
    assert parse_icecast_stats(SHOUTCAST_V1, "/live") is None
    assert parse_shoutcast_stats(b"<icestats/>", None) is None


def test_icecast_figures_of_the_registered_mount():
    stats = b"""<?xml version="1.0"?><icestats><listeners>7</listeners>
    <source mount="/other"><title>Wrong</title><listeners>5</listeners></source>
    <source mount="/live"><artist>Moby</artist><title>Porcelain</title><listeners>2</listeners>
    <audio_info>ice-samplerate=44100;ice-bitrate=192;ice-channels=2</audio_info></source>
    </icestats>"""
    assert parse_icecast_stats(stats, "/live") == ProbeResult(
        "icecast2", None, "Moby - Porcelain", 192, 2
    )
    offline = ProbeResult("icecast2", None, None, None, None)
    assert parse_icecast_stats(stats, "/missing") == offline
