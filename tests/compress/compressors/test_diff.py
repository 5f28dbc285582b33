"""Diff compressor: headers and changed lines kept, context and index lines trimmed."""

from __future__ import annotations

from headroom_twisted.compress.compressors import diff

GIT_DIFF = """diff --git a/src/app.py b/src/app.py
index 3b18e51..a9c2f4d 100644
--- a/src/app.py
+++ b/src/app.py
@@ -10,9 +10,9 @@ def main():
     setup()
     load()
     parse()
-    port = 80
+    port = 8080
     serve()
     wait()
     stop()
     close()
-    return 0
+    return 1
diff --git a/README.md b/README.md
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/README.md
@@ -0,0 +1 @@
+hello"""


def test_headers_and_changes_kept_context_and_index_dropped() -> None:
    result = diff.compress(GIT_DIFF, "")
    out = result.text.split("\n")
    for line in GIT_DIFF.split("\n"):
        if line.startswith(("diff --git", "--- ", "+++ ", "@@", "new file", "+", "-")):
            assert line in out
    assert not any(line.startswith("index ") for line in out)
    assert "     setup()" not in out
    assert out[out.index("+    port = 8080") + 1] == diff.GAP
    assert out[-1].startswith("[... omitted: 7 unchanged context lines")
    assert "2 index lines" in out[-1] and "encoded-data" not in out[-1]


def test_diff_u_timestamps_are_dropped_from_headers() -> None:
    text = (
        "diff -ru a/x.py b/x.py\n--- a/x.py\t2023-05-22 15:08:07.000000000 +0000\n"
        "+++ b/x.py\t2024-05-20 13:47:22.000000000 +0000\n@@ -1 +1 @@\n-a\n+b"
    )
    out = diff.compress(text, "").text.split("\n")
    assert out[:6] == ["diff -ru a/x.py b/x.py", "--- a/x.py", "+++ b/x.py", "@@ -1 +1 @@", "-a", "+b"]


def test_encoded_blobs_keep_their_ends() -> None:
    body = [f"+{'QUJD' * 16}" for _ in range(20)]
    text = "\n".join(
        ["--- /dev/null", "+++ b/key.pem", "@@ -0,0 +1,22 @@", "+-----BEGIN KEY-----", *body, "+-----END KEY-----"]
    )
    out = diff.compress(text, "").text.split("\n")
    assert "+-----BEGIN KEY-----" in out and "+-----END KEY-----" in out
    assert "+[... 18 encoded-data lines omitted ...]" in out
