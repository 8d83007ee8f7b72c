"""The embedder's precision follows what the CPU computes natively."""

from bot.engines.hardware import cpu_flags, embedder_precision


def test_flags_are_read_from_x86_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\nprocessor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert {"avx2", "avx512_bf16"} <= cpu_flags(x86)
    assert "bf16" in cpu_flags(arm)


def test_auto_takes_float32_without_native_bfloat16_and_bfloat16_with_it():
    assert embedder_precision("auto", native_bf16=False).dtype == "float32"
    assert embedder_precision("auto", native_bf16=True).dtype == "bfloat16"


def test_an_explicit_setting_wins_and_says_when_it_will_be_slow():
    forced = embedder_precision("bfloat16", native_bf16=False)
    assert forced.dtype == "bfloat16" and "slower" in forced.reason
    assert embedder_precision("float32", native_bf16=True).dtype == "float32"
