"""The corpus benchmark's pieces that need no model: the row count behind its projection, and its commands."""

from __future__ import annotations

import argparse
import gzip


def test_rows_are_counted_as_the_command_reads_them(tmp_path, load_benchmark):
    path = tmp_path / "reviews.tsv.gz"
    with gzip.open(path, "wb") as out:  # a bare \r inside a review does not split it (NSMC has 133 such)
        out.write("review_id\treview\n1\t좋다\r정말\n2\t\n3\t싫다\n".encode())
    assert load_benchmark("bench_corpus").count_rows(path) == 3


def test_one_process_runs_the_module_and_several_go_through_accelerate(tmp_path, load_benchmark):
    bench = load_benchmark("bench_corpus")
    args = argparse.Namespace(rows=20, shard_size=5, batch_size=4, model=None)
    one = bench.command(1, tmp_path / "in.tsv.gz", tmp_path / "out", args)
    assert one[1:3] == ["-m", "redheart.corpus"] and "--limit" in one and "--model" not in one
    two = bench.command(2, tmp_path / "in.tsv.gz", tmp_path / "out", args)
    assert "accelerate.commands.launch" in two and two[two.index("--num_processes") + 1] == "2"
    assert two[two.index("-m", 3) + 1] == "redheart.corpus"
