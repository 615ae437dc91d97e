"""Leakage: dedup refcoco / lvis against the real COCO subset, and the general audit."""

from __future__ import annotations

import json
import pickle
import random

from odvgkit.curate.hashes import HashCache, PhashIndex, hamming, hash_files
from odvgkit.curate.sources import coco_id_from_name


def _ids(doc):
    return [im["id"] for im in doc["images"]]


def test_coco_id_from_names_across_2014_2017():
    assert coco_id_from_name("COCO_train2014_000000123456.jpg") == 123456
    assert coco_id_from_name("train2017/000000000009.jpg") == 9
    assert coco_id_from_name("COCO_val2014_000000581929.jpg") == 581929
    assert coco_id_from_name("objects365_v2_00000001.jpg") is None
    assert coco_id_from_name("images/123.jpg") is None


def test_dedup_refcoco_removes_every_eval_split(cli, tmp_path, coco_train, coco_train_doc, mdetr, write_json):
    ids = _ids(coco_train_doc)
    ann = tmp_path / "mdetr"
    mdetr(ann / "finetune_refcoco_val.json", ids[0:2])
    mdetr(ann / "finetune_refcoco_testA.json", ids[2:4])
    mdetr(ann / "finetune_refcoco+_testB.json", ids[4:5])
    mdetr(ann / "finetune_refcocog_test.json", [ids[5], ids[0]])
    mdetr(ann / "finetune_grefcoco_val.json", [999999999])  # not in train: matches nothing
    mdetr(ann / "finetune_refcoco_train.json", ids[10:20])  # training split: must not remove anything
    # official gRefCOCO: only non-train refs count
    write_json(tmp_path / "grefcoco" / "grefs(unc).json",
               [{"image_id": ids[6], "split": "testA", "ref_id": 1}, {"image_id": ids[7], "split": "train", "ref_id": 2}])
    # official refcoco pickle (plain lists/dicts)
    (tmp_path / "refcocog").mkdir()
    with open(tmp_path / "refcocog" / "refs(umd).p", "wb") as fh:
        pickle.dump([{"image_id": ids[8], "split": "val", "ref_id": 3, "file_name": "COCO_train2014_x_1.jpg"},
                     {"image_id": ids[9], "split": "train", "ref_id": 4}], fh, protocol=2)
    out = tmp_path / "out" / "train_clean.json"
    res = cli("dedup", "refcoco", "--coco-train", coco_train, "--refexp", ann, "--refexp", tmp_path / "grefcoco",
              "--refexp", tmp_path / "refcocog", "-o", out, "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    expected_removed = set(ids[0:7]) | {ids[8]}
    new = json.loads(out.read_text())
    assert set(_ids(new)) == set(ids) - expected_removed
    # file order kept (upstream writes set order)
    assert _ids(new) == [i for i in ids if i not in expected_removed]
    assert not any(a["image_id"] in expected_removed for a in new["annotations"])
    kept_anns = [a for a in coco_train_doc["annotations"] if a["image_id"] not in expected_removed]
    assert new["annotations"] == kept_anns
    assert set(new) == set(coco_train_doc)
    assert summary["removed_images"] == 8
    manifest = json.loads((tmp_path / "out" / "train_clean_removed.json").read_text())
    by_id = {r["image_id"]: r for r in manifest["removed"]}
    assert set(by_id) == expected_removed
    causes0 = {(c["benchmark"], c["split"]) for c in by_id[ids[0]]["causes"]}
    assert causes0 == {("refcoco", "val"), ("refcocog", "test")}
    assert {(c["benchmark"], c["split"]) for c in by_id[ids[4]]["causes"]} == {("refcoco+", "testB")}
    assert {(c["benchmark"], c["split"]) for c in by_id[ids[6]]["causes"]} == {("grefcoco", "testA")}
    assert {(c["benchmark"], c["split"]) for c in by_id[ids[8]]["causes"]} == {("refcocog(umd)", "val")}
    assert by_id[ids[2]]["file_name"] == next(im["file_name"] for im in coco_train_doc["images"] if im["id"] == ids[2])
    # the general audit takes the same directory
    res = cli("leakage", "audit", coco_train, "-a", ann, "--by", "id", "--json", "--no-cache")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["leaking_images"] == 6  # ids[0:6]: the MDETR files only


def test_dedup_refcoco_unknown_benchmark_file_fails_cleanly(cli, tmp_path, coco_train, write_json):
    bogus = write_json(tmp_path / "my_eval.json", {"images": []})
    out = tmp_path / "o.json"
    res = cli("dedup", "refcoco", "--coco-train", coco_train, "--refexp", bogus, "-o", out)
    assert res.returncode != 0
    assert "unknown benchmark file" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists() and not any(tmp_path.glob("o*removed*"))
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli("dedup", "refcoco", "--coco-train", coco_train, "--refexp", empty, "-o", out)
    assert res.returncode != 0 and "no RefCOCO" in res.stderr and not out.exists()


def test_refs_pickle_with_objects_is_refused(cli, tmp_path, coco_train):
    import collections

    (tmp_path / "refcoco").mkdir()
    with open(tmp_path / "refcoco" / "refs(unc).p", "wb") as fh:
        pickle.dump([collections.OrderedDict(image_id=1, split="val")], fh)
    res = cli("dedup", "refcoco", "--coco-train", coco_train, "--refexp", tmp_path / "refcoco", "-o", tmp_path / "o.json")
    assert res.returncode != 0 and "refuses to load" in res.stderr


def test_dedup_lvis_by_coco_url_ids(cli, tmp_path, coco_train, coco_train_doc, write_json):
    ids = _ids(coco_train_doc)
    lvis_ids = [*ids[3:9], 555555555]
    lvis = write_json(tmp_path / "lvis_v1_val.json", {
        "images": [{"id": i, "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg", "height": 1, "width": 1}
                   for i in lvis_ids],
        "annotations": [], "categories": []})
    res = cli("dedup", "lvis", "--coco-train", coco_train, "--lvis-val", lvis, "-o", tmp_path / "nolvis.json", "--json")
    assert res.returncode == 0, res.stderr
    new = json.loads((tmp_path / "nolvis.json").read_text())
    assert _ids(new) == [i for i in ids if i not in set(ids[3:9])]
    assert json.loads(res.stdout)["removed_images"] == 6


def test_audit_odvg_against_coco_by_id_and_name_with_remove(cli, tmp_path, write_jsonl, write_json, read_jsonl, od):
    train = write_jsonl(tmp_path / "train.jsonl", [
        od("COCO_train2014_000000000042.jpg", [0]),   # id leak (2014 name vs 2017 eval)
        od("other/000000000043.jpg", [1]),            # id leak
        od("photo_1.jpg", [0]),                        # name leak
        od("photo_2.jpg", [1]),                        # clean
        od("COCO_train2014_000000000042.jpg", [2]),   # second record of a leaking image
    ])
    evalset = write_json(tmp_path / "val.json", {
        "images": [{"id": 42, "file_name": "000000000042.jpg"}, {"id": 43, "file_name": "000000000043.jpg"},
                   {"id": 7, "file_name": "PHOTO_1.JPG"}],
        "annotations": [], "categories": []})
    out = tmp_path / "clean"
    res = cli("leakage", "audit", train, "--against", evalset, "--remove", "-o", out, "--json", "--no-cache")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["leaking_images"] == 4  # records (lines) 1, 2, 3, 5
    kept = read_jsonl(out / "train.jsonl")
    assert [r["filename"] for r in kept] == ["photo_2.jpg"]
    pair = summary["pairs"][0]
    assert pair["eval"] == "val" and pair["images"] == 4 and pair["by_id"] == 3 and pair["by_name"] == 2
    manifest = json.loads((out / "train_removed.json").read_text())
    assert [r["where"] for r in manifest["removed"]] == [1, 2, 3, 5]
    report = json.loads((out / "leakage_report.json").read_text())
    assert report["train"][0]["leaking_images"] == 4


def test_audit_by_id_only_ignores_names(cli, tmp_path, write_jsonl, write_json, od):
    train = write_jsonl(tmp_path / "t.jsonl", [od("photo_1.jpg", [0])])
    ev = write_json(tmp_path / "v.json", {"images": [{"id": 1, "file_name": "photo_1.jpg"}], "annotations": []})
    res = cli("leakage", "audit", train, "-a", ev, "--by", "id", "--json", "--no-cache")
    assert res.returncode == 0 and json.loads(res.stdout)["leaking_images"] == 0


def test_audit_perceptual_and_content_hashes(cli, tmp_path, write_jsonl, write_json, picture, od):
    ev_root, tr_root = tmp_path / "coco", tmp_path / "o365"
    for i in range(4):
        picture(ev_root / f"e{i}.jpg", seed=i)
    # training copies: byte-identical, resized+re-encoded, and unrelated images; one corrupt file
    (tr_root).mkdir()
    (tr_root / "same.jpg").write_bytes((ev_root / "e0.jpg").read_bytes())
    from PIL import Image

    with Image.open(ev_root / "e1.jpg") as im:
        im.resize((200, 150)).save(tr_root / "resized.jpg", quality=70)
    picture(tr_root / "unrelated.jpg", seed=100)
    (tr_root / "broken.jpg").write_bytes(b"\xff\xd8not a jpeg at all")
    train = write_jsonl(tmp_path / "o365.jsonl", [od(n, [0]) for n in
                                                   ("same.jpg", "resized.jpg", "unrelated.jpg", "broken.jpg", "missing.jpg")])
    ev = write_jsonl(tmp_path / "coco_val.jsonl", [od(f"e{i}.jpg", [0]) for i in range(4)])
    cache = tmp_path / "cache.sqlite"
    res = cli("leakage", "audit", f"{train}@{tr_root}", "-a", f"{ev}@{ev_root}", "--by", "content,phash",
              "--cache", cache, "--json", "-o", tmp_path / "rep")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["leaking_images"] == 2
    assert s["train_unreadable"] == 2  # broken + missing: counted, not fatal
    pair = s["pairs"][0]
    assert pair["by_content"] == 1 and pair["by_phash"] == 2
    rep = json.loads((tmp_path / "rep" / "leakage_report.json").read_text())
    assert rep["pairs"][0]["examples"].split(", ") == ["same.jpg", "resized.jpg"]
    # second run: everything readable comes from the cache
    hc = HashCache(cache)
    paths = [tr_root / n for n in ("same.jpg", "resized.jpg", "unrelated.jpg")]
    results = [r for _, r in hash_files(paths, lambda p: p, hc)]
    hc.close()
    assert all(r.cached for r in results)


def test_phash_of_resized_copy_is_close_and_of_other_image_far(tmp_path, picture):
    from PIL import Image

    from odvgkit.curate.hashes import perceptual_hash

    a = picture(tmp_path / "a.jpg", seed=1, size=(640, 480))
    with Image.open(a) as im:
        im.resize((160, 120)).save(tmp_path / "b.png")
    c = picture(tmp_path / "c.jpg", seed=2)
    ha, hb, hc = (perceptual_hash(p.read_bytes()) for p in (a, tmp_path / "b.png", c))
    assert hamming(ha, hb) <= 4
    assert hamming(ha, hc) > 12


def test_phash_index_finds_exactly_the_brute_force_pairs():
    rng = random.Random(5)
    stored = [rng.getrandbits(64) for _ in range(300)]
    # near copies of some stored hashes
    queries = [stored[i] ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for i in range(0, 300, 7)]
    queries += [rng.getrandbits(64) for _ in range(100)]
    for t in (0, 2, 4, 9):
        idx = PhashIndex(t)
        for h in stored:
            idx.add(h)
        for q in queries:
            brute = [(i, hamming(q, h)) for i, h in enumerate(stored) if hamming(q, h) <= t]
            assert idx.query(q) == brute


def test_audit_bad_inputs_one_line_errors(cli, tmp_path, write_jsonl, od):
    train = write_jsonl(tmp_path / "t.jsonl", [od("a.jpg", [0])])
    res = cli("leakage", "audit", train, "-a", tmp_path / "nope.json")
    assert res.returncode != 0 and "no such file" in res.stderr
    res = cli("leakage", "audit", train, "-a", train, "--by", "id,colour")
    assert res.returncode != 0 and "--by" in res.stderr
    res = cli("leakage", "audit", train, "-a", train, "--by", "phash")
    assert res.returncode != 0 and "FILE@IMAGE_ROOT" in res.stderr
    weird = tmp_path / "eval.csv"
    weird.write_text("a,b\n")
    res = cli("leakage", "audit", train, "-a", weird)
    assert res.returncode != 0 and "unknown file type" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_audit_coco_json_remove_and_odvg_train_for_dedup(cli, tmp_path, coco_train, coco_train_doc, write_json, read_jsonl):
    ids = _ids(coco_train_doc)
    lvis = write_json(tmp_path / "lvis_v1_val.json", {"images": [
        {"id": i, "coco_url": f"http://images.cocodataset.org/val2017/{i:012d}.jpg"} for i in ids[:3]]})
    res = cli("leakage", "audit", coco_train, "-a", lvis, "--by", "id", "--remove", "-o", tmp_path / "clean", "--json", "--no-cache")
    assert res.returncode == 0, res.stderr
    new = json.loads((tmp_path / "clean" / "instances_train2017.json").read_text())
    assert _ids(new) == ids[3:]
    assert new["categories"] == coco_train_doc["categories"] and new["info"] == coco_train_doc["info"]
    # the same through an ODVG file converted from COCO (file names carry the ids)
    od = tmp_path / "coco_od.jsonl"
    assert cli("convert", "coco2odvg", coco_train, "-o", od, "--label-map", tmp_path / "lm.json", "-q").returncode == 0
    res = cli("dedup", "lvis", "--coco-train", od, "--lvis-val", lvis, "-o", tmp_path / "od_clean.jsonl", "--json")
    assert res.returncode == 0, res.stderr
    kept = read_jsonl(tmp_path / "od_clean.jsonl")
    removed = {f"{i:012d}.jpg" for i in ids[:3]}
    assert len(kept) == len(read_jsonl(od)) - 3 and not removed & {r["filename"] for r in kept}


def test_detects_one_record_odvg_without_final_newline(tmp_path):
    from odvgkit.curate.sources import detect_kind

    p = tmp_path / "one.json"
    p.write_text('{"filename": "a.jpg", "height": 1, "width": 1}')
    assert detect_kind(p) == "odvg"
    q = tmp_path / "coco.json"
    q.write_text('{"images": [{"id": 1, "file_name": "a.jpg"}],\n "annotations": []}')
    assert detect_kind(q) == "json-object"


def test_filter_coco_keeps_exact_bytes_and_order():
    import io

    from odvgkit.curate.dedup import filter_coco

    data = (b'{"info": {"v": 1e-05}, "images": [{"id": 3, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"},'
            b' {"id": 2, "file_name": "c.jpg"}], "annotations": [{"image_id": 1, "bbox": [12.0, 1e-05, 3, 4]},'
            b' {"image_id": 2, "bbox": [0.30000000000000004, 0, 1, 1]}, {"image_id": 1, "bbox": [5, 5, 5, 5]}],'
            b' "extra": [1, 2]}')
    out = io.BytesIO()
    counts = filter_coco(data, {1}, out)
    assert counts == (2, 1, 2)
    assert out.getvalue() == (b'{"info":{"v": 1e-05},"images":[{"id": 3, "file_name": "a.jpg"},{"id": 2, "file_name": "c.jpg"}],'
                              b'"annotations":[{"image_id": 2, "bbox": [0.30000000000000004, 0, 1, 1]}],"extra":[1, 2]}')
    assert json.loads(out.getvalue())["images"][1]["id"] == 2
