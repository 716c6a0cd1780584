"""Dataset registry: official URLs and published checksums, embedded generators, user folders.

Three kinds of dataset, all materialised by one workflow stage into ``data/raw/<name>/``:

* ``remote``: files fetched from their official URLs (or a mirror) and verified;
* ``embedded``: generated offline by our code or read from a PyPI package (labelled synthetic
  or embedded in every report);
* ``local``: data that cannot be downloaded (competition data); read from a user folder
  (``data_dirs.<name>`` in params.yaml) after format checks.

A ``remote`` dataset with ``data_dirs.<name>`` set is read from that folder instead of being
downloaded: the checksums and format checks still apply.

A ``remote`` dataset may also list a ``mirror_subset``: partial, derived files that a mirror
keeps in ``<mirror>/<name>-subset/`` when it cannot hold the official ones. They are used only
from a mirror that lacks the official files, verified against the mirror's SHA256SUMS (the
official checksums can never pass for them), and labelled "mirror subset" in PROVENANCE.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kexue.errors import ConfigError


@dataclass(frozen=True)
class RemoteFile:
    name: str
    urls: tuple[str, ...]  # official locations, tried in order
    sha256: str | None = None
    md5: str | None = None
    # For a .gz whose container may differ (recompressed copies): accepted when the
    # decompressed bytes match this published hash of the uncompressed file.
    sha256_uncompressed: str | None = None
    size: int | None = None
    # no published checksum: the sha256 of the first download is recorded in PROVENANCE.json
    record_sha256: bool = False


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: Literal["remote", "embedded", "local"]
    description: str
    files: tuple[RemoteFile, ...] = ()
    # embedded: "module:function" called as fn(dest: Path) -> None
    generator: str | None = None
    citation: str = ""
    licence: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    # remote: partial, derived copies at <mirror>/<name>-subset/<file> (urls=(); sha256 from the
    # mirror's SHA256SUMS), fetched instead of ``files`` only when a mirror lacks those
    mirror_subset: tuple[RemoteFile, ...] = ()
    # image datasets: the reader of kexue.data.images ("idx" for MNIST-format files)
    reader: str = ""
    # local: what a user folder must hold (files or folders), checked before anything is read
    required: tuple[str, ...] = ()


_MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/{}",
    "https://storage.googleapis.com/cvdf-datasets/mnist/{}",
    "http://yann.lecun.com/exdb/mnist/{}",
)


FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def _mnist_file(name, sha256, md5, size, sha256_uncompressed=None):
    return RemoteFile(name, tuple(u.format(name) for u in _MNIST_URLS), sha256=sha256, md5=md5,
                      size=size, sha256_uncompressed=sha256_uncompressed)


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            name="mnist",
            kind="remote",
            description="MNIST handwritten digits, 60,000 train + 10,000 test, 28x28 8-bit",
            files=(
                _mnist_file("train-images-idx3-ubyte.gz",
                            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                            "f68b3c2dcbeaceb1a9d9e0c7c1d1a7ab", 9912422,
                            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
                _mnist_file("train-labels-idx1-ubyte.gz",
                            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                            "d53e105ee54ea40749a09fcbcd1e9432", 28881),
                _mnist_file("t10k-images-idx3-ubyte.gz",
                            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                            "9fb629c4189551a2d022fa330f9573f3", 1648877),
                _mnist_file("t10k-labels-idx1-ubyte.gz",
                            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                            "ec29112dd5afa0611ce80d1b7f02629c", 4542),
            ),
            citation="LeCun, Bottou, Bengio & Haffner (1998)",
            licence="CC BY-SA 3.0 (per Keras/TFDS)",
            reader="idx",
        ),
        Dataset(
            name="fashion-mnist",
            kind="remote",
            description="Fashion-MNIST, 60,000 train + 10,000 test, 28x28 8-bit",
            files=tuple(
                RemoteFile(name, (FASHION_MNIST_URL + name,), sha256=sha256, md5=md5, size=size)
                for name, sha256, md5, size in (
                    ("train-images-idx3-ubyte.gz",
                     "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                     "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
                    ("train-labels-idx1-ubyte.gz",
                     "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                     "25c81989df183df01b3e8a0aad5dffbe", 29515),
                    ("t10k-images-idx3-ubyte.gz",
                     "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                     "bef4ecab320f06d8554ea6380940ec79", 4422102),
                    ("t10k-labels-idx1-ubyte.gz",
                     "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                     "bb300cfdad3c16e7a12a480ee83cd310", 5148),
                )),
            citation="Xiao, Rasul & Vollgraf (2017), arXiv 1708.07747",
            licence="MIT (Zalando SE)",
            notes=("md5s as published in the official README; sha256 of the same files",),
            reader="idx",
        ),
        Dataset(
            name="digits",
            kind="embedded",
            description="scikit-learn's bundled 8x8 digits (1,797 images, 17 grey levels)",
            generator="kexue.data.embedded:sklearn_digits",
            reader="digits",
            citation="UCI ML hand-written digits (Alpaydin & Kaynak 1998)",
            licence="CC BY 4.0 (UCI); shipped in the scikit-learn wheel",
        ),
        Dataset(
            name="image_patches",
            kind="embedded",
            description=("scikit-learn's two bundled sample photos (427x640 RGB); the glow "
                         "article cuts them into 16x16 patches"),
            generator="kexue.data.embedded:sklearn_image_patches",
            reader="image_patches",
            licence="shipped in the scikit-learn wheel",
        ),
        Dataset(
            name="mnist1d",
            kind="embedded",
            description="MNIST-1D generated offline by the mnist1d package (4,000/1,000, length 40)",
            generator="kexue.data.embedded:mnist1d",
            citation="Greydanus & Kobak (2020), arXiv 2011.14439",
            licence="Apache-2.0",
        ),
        Dataset(
            name="synthetic_spectra",
            kind="embedded",
            description="physically motivated synthetic 4-class spectra on the 2600-point grid",
            generator="kexue.data.spectra.synthetic:generate_dataset",
        ),
        Dataset(
            name="tianchi_spectra",
            kind="local",
            description="Tianchi 2018 LAMOST DR3 competition spectra (user-supplied; not public)",
            required=("first_train_index_20180131.csv", "first_train_data_20180131"),
            citation="Tianchi 天体光谱智能分类, raceId 231646",
        ),
        Dataset(
            name="cifar10",
            kind="remote",
            description="CIFAR-10, binary version (50,000 train + 10,000 test, 32x32 RGB)",
            files=(
                RemoteFile("cifar-10-binary.tar.gz",
                           ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                           md5="c32a1d4ab5d03f1284b67883e8d87530"),
            ),
            # The first 4,000 records of data_batch_1.bin (training images 0-3999), rebuilt
            # from lossless third-party copies: see the mirror's MANIFEST.md, cifar10-subset.
            mirror_subset=(
                RemoteFile("data_batch_1_first4000.bin", (),
                           sha256=(
                               "0993cf8b8e43bc207603aef9787006995746513f5e3fa5a52e06d1b069926330"),
                           size=12_292_000),
            ),
            citation="Krizhevsky (2009), Learning Multiple Layers of Features from Tiny Images",
            reader="cifar10",
        ),
        Dataset(
            name="celeba",
            kind="remote",
            description="CelebA aligned faces (202,599 images, 178x218 JPEG) and the official split",
            files=(
                RemoteFile("img_align_celeba.zip",
                           ("https://drive.google.com/uc?id=0B7EVK8r0v71pZjFTYXZWM3FlRnM",),
                           md5="00d2c5bc6d35e252742224ab0c1e8fcb"),
                RemoteFile("list_eval_partition.txt",
                           ("https://drive.google.com/uc?id=0B7EVK8r0v71pY0NSMzRuSXJEVkk",),
                           md5="d32c9cbf5e040fd4025c592c306e6668"),
            ),
            # Faces 000001-010000 downscaled 2x to 89x109 and re-encoded by a third party (no
            # partition file): see the mirror's MANIFEST.md, celeba-subset.
            mirror_subset=(
                RemoteFile("celeba_align_89x109_000001-010000.tar.gz", (),
                           sha256=(
                               "ef6fe0aa04334812ec73a1307d4c0afb713d1dc92b1bb28a2841e8774f1a5876"),
                           size=21_732_686),
            ),
            citation="Liu, Luo, Wang & Tang (2015), Deep Learning Face Attributes in the Wild",
            licence="CelebA agreement: non-commercial research only, no redistribution",
            reader="celeba",
        ),
        Dataset(
            name="kbqa",
            kind="embedded",
            description=("SYNTHETIC knowledge-base QA in Su's SogouQA format (6,000 train + "
                         "1,500 validation questions, 5-10 passages each)"),
            generator="kexue.data.kbqa:generate",
            notes=("synthetic: never comparable with published SogouQA scores",),
        ),
        Dataset(
            name="sogouqa",
            kind="local",
            description=("CIPS-SOGOU factoid QA in Su's format: SogouQA.json (29,812 questions) "
                         "and the official answers evaluate_tool/qid_answer_expand, copied "
                         "into one folder (data_dirs.sogouqa)"),
            citation="CIPS-SOGOU QA 2017; Su's SogouQA.json (kexue.fm/archives/6906)",
            licence="competition data, research only; no published checksum",
            required=("SogouQA.json", "qid_answer_expand"),
        ),
        Dataset(
            name="webqa",
            kind="local",
            description="WebQA in Su's JSON format: WebQA.json (42,223 questions; data_dirs.webqa)",
            citation="Li et al. (2016), arXiv 1607.06275; Su's WebQA.json",
            licence="no licence found: research only",
            required=("WebQA.json",),
        ),
        Dataset(
            name="webqa_v1",
            kind="remote",
            description="WebQA v1.0, the official zip of Baidu IDL (read in memory, checked)",
            files=(
                RemoteFile("WebQA.v1.0.zip",
                           ("http://paddlepaddle.bj.bcebos.com/dataset/webqa/WebQA.v1.0.zip",),
                           record_sha256=True),
            ),
            citation="Li et al. (2016), arXiv 1607.06275",
            licence="no licence found: research only",
            notes=(("no published checksum: the sha256 of the first download is recorded in "
                    "PROVENANCE.json"),),
        ),
        Dataset(
            name="webqa-sample",
            kind="remote",
            description=("WebQA v1.0 annotated test/validation sets (one positive evidence per "
                         "question) as xlsx; only in the offline mirror (E6)"),
            files=(
                RemoteFile("test_ann.xlsx", (), sha256=(
                    "a06d647ed2b46380d600be1be7730496a54b160579539c82aaceb9f290927890")),
                RemoteFile("validation_ann.xlsx", (), sha256=(
                    "f62ed9e61d371479cebeed3cde9c82750376b5a25c414dbcac69ed242ff4e0f2")),
            ),
            citation="Li et al. (2016), arXiv 1607.06275 (me_test.ann, me_validation.ann)",
            licence="no licence found: research only",
            notes=("derived: converted to xlsx by a third party; see the mirror's MANIFEST.md",),
        ),
        Dataset(
            name="sogouqa-sample",
            kind="remote",
            description=("the CIPS-SOGOU evaluation files as shipped in Su's DGCNN repository "
                         "(evaluate_tool/: qid_answer_expand for qids 10000-39999, punctuation, "
                         "the test_input/test_out self-test pair) and a 22-record SogouQA.json "
                         "sample; the metric check of E5"),
            # No official URL (the competition page is offline) and no published checksum: read
            # from a mirror or data_dirs.sogouqa-sample (same layout); the sha256s are the
            # offline mirror's, whose evaluate_tool files are byte-identical to Su's repository.
            files=tuple(RemoteFile(name, (), sha256=sha256) for name, sha256 in (
                ("SogouQA.json",
                 "9cfad89372415db07cbe0ec50ed202cc40763ed438a92107ea38fafb9a090149"),
                ("evaluate_tool/punctuation",
                 "3e65966f952546cd862d51766c250da8312976b2d09a2d3b91b02d80508c46da"),
                ("evaluate_tool/qid_answer_expand",
                 "955dee31d573f1d04bbfb3343deeaaaf18cdb001bf9a024adaff6dfda8791a49"),
                ("evaluate_tool/test_input",
                 "dcf86d1be284f9c12ce6106645843f368a3bfb0320fcd16a337b12483d600965"),
                ("evaluate_tool/test_out",
                 "81a2946857d3ba094f32d00314b78d9d2f76ed4c43a480fb5068da78b50598c5"),
            )),
            citation=("CIPS-SOGOU QA 2017, http://task.www.sogou.com/cips-sogou_qa/ (offline); "
                      "evaluate_tool/ of bojone/dgcnn_for_reading_comprehension"),
            licence="competition data, research only (Su: 'to be removed on request')",
            notes=(("evaluate_tool: as Sogou released it with the competition, redistributed by "
                    "Su (unverified against an official checksum; none is published); "
                    "SogouQA.json: derived sample, the last record truncated"),),
        ),
        Dataset(
            name="paraphrase_lexicon",
            kind="embedded",
            description=("the in-code Chinese lexicon (40 one-slot question intents, typed slot "
                         "pools, synonyms, particles, confusable characters) from which "
                         "SYNTHETIC paraphrase groups are sampled"),
            generator="kexue.data.paraphrase:write_lexicon",
            licence="written for this project",
        ),
        Dataset(
            name="lcqmc",
            kind="remote",
            description=("LCQMC Chinese question pairs (Baidu Zhidao), s1<TAB>s2<TAB>label: dev "
                         "8,802 + test 12,500 pairs (train.txt is not used)"),
            # Distributed on application only (no public URL): read from a mirror or from
            # data_dirs.lcqmc. The sha256s are the offline mirror's (no official checksum).
            files=(
                RemoteFile("dev.txt", (), sha256=(
                    "d3cd41ed89b8f6196a76ebff2aa03d5ecf42edcd12942aa865d34f7e570af7c2")),
                RemoteFile("test.txt", (), sha256=(
                    "8969f9c16050f40df9da6f591443a47bc14c17a504a354ee4cc4ab5b9aa303d9")),
            ),
            citation=("Liu et al. (2018), LCQMC: A Large-scale Chinese Question Matching "
                      "Corpus, COLING"),
            licence="HIT Shenzhen terms: non-commercial research, internal use, no redistribution",
            notes=(("apply at http://icrc.hitsz.edu.cn/info/1037/1146.htm, then set "
                    "data_dirs.lcqmc to the folder holding dev.txt and test.txt"),),
        ),
        Dataset(
            name="tongyiju",
            kind="local",
            description=("Su's private synonymous-sentence groups, tongyiju.csv "
                         "(group_id<TAB>sentence, ~100k groups; user-supplied)"),
            citation="kexue.fm/archives/5743 (the corpus is not shared)",
        ),
    ]
}


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})") from None
