"""The run form's Resources section: memory, CPUs, CPU shares, pids and CPU set limits. The
container page's Limits card (docker update) reuses it."""

from django import forms

from panel.containers import resources
from panel.errors import InvalidParameter
from workers.runtime.cgroups import validate as checks
from workers.runtime.cgroups.config import Resources

from . import RunSection


class ResourcesSection(RunSection):
    section_id = "resource-settings"
    section_title = "Resources"
    section_summary = "memory, CPUs, CPU shares, pids and CPU set limits"
    error_fields = (("memory limit", "memory"), ("memoryswap", "memory"),
                    ("range of cpus", "cpus"), ("nano cpus", "cpus"),
                    ("cpu shares", "cpu_shares"), ("cpuset cpus", "cpuset_cpus"),
                    ("requested cpus", "cpuset_cpus"))

    memory = forms.CharField(
        max_length=32, required=False, label="Memory limit",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 256m", "autocomplete": "off",
                                      "spellcheck": "false"}),
        help_text="A number with b, k, m or g (--memory). Past it the kernel's OOM killer "
                  "ends the container (exit code 137). At least 6m.",
    )
    cpus = forms.CharField(
        max_length=16, required=False, label="CPUs",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 0.75", "inputmode": "decimal",
                                      "autocomplete": "off"}),
        help_text=f"How much CPU time at most, in cores (--cpus); this node has "
                  f"{checks.cpu_count()}.",
    )
    cpu_shares = forms.IntegerField(
        required=False, label="CPU shares", min_value=2, max_value=checks.MAX_CPU_SHARES,
        widget=forms.TextInput(attrs={"placeholder": "1024", "inputmode": "numeric"}),
        help_text="Relative weight when CPUs are busy (--cpu-shares): 1024 gets twice the "
                  "time of 512.",
    )
    pids_limit = forms.IntegerField(
        required=False, label="Pids limit", min_value=1,
        widget=forms.TextInput(attrs={"placeholder": "e.g. 100", "inputmode": "numeric"}),
        help_text="The most processes and threads at once (--pids-limit): stops fork bombs.",
    )
    cpuset_cpus = forms.CharField(
        max_length=64, required=False, label="CPU set",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 0 or 0-1", "autocomplete": "off"}),
        help_text=f"Which CPUs it may run on (--cpuset-cpus); this node has "
                  f"{checks.online_cpus()}.",
    )

    def clean_memory(self):
        text = self.cleaned_data["memory"].strip()
        if not text:
            return None
        try:
            value = resources.parse_bytes(text)
        except InvalidParameter:
            raise forms.ValidationError("Enter a size such as 256m, 1g or 512k.") from None
        if value < checks.MIN_MEMORY:
            raise forms.ValidationError("Minimum memory limit allowed is 6MB.")
        return value

    def clean_cpus(self):
        text = self.cleaned_data["cpus"].strip()
        if not text:
            return None
        try:
            value = resources.parse_cpus(text)
            checks.validate_nano_cpus(value)
        except InvalidParameter:
            raise forms.ValidationError("Enter a number of CPUs such as 0.5 or 1.5.") from None
        except checks.CgroupConfigError as e:
            raise forms.ValidationError(f"{e}.") from None
        if value < 10_000_000:
            raise forms.ValidationError("At least 0.01 CPUs.")
        return value

    def clean_cpuset_cpus(self):
        text = self.cleaned_data["cpuset_cpus"].strip()
        if text:
            try:
                checks.validate_resources(Resources(cpuset_cpus=text))
            except checks.CgroupConfigError as e:
                raise forms.ValidationError(f"{e}.") from None
        return text

    def apply(self, data: dict, config: dict, host_config: dict) -> None:
        for key, field in (("Memory", "memory"), ("NanoCpus", "cpus"),
                           ("CpuShares", "cpu_shares"), ("PidsLimit", "pids_limit"),
                           ("CpusetCpus", "cpuset_cpus")):
            if data.get(field):
                host_config[key] = data[field]
