"""What the emulator's handlers share: settings, jobs, asset indexes, the processor, faults,
pushback."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bulkup.emulator.assets import CompanyAssets
from bulkup.emulator.faultplan import FaultPlan
from bulkup.emulator.jobs import JobStore
from bulkup.emulator.processing import Processor
from bulkup.emulator.pushback import Pushback
from bulkup.emulator.settings import Company, EmulatorSettings


@dataclass(slots=True)
class EmulatorState:
    """What the handlers share: settings, jobs, asset indexes, the processor, the fault plan
    and the pushback knobs (POSTs in flight, answer delay, intake rate)."""

    settings: EmulatorSettings
    store: JobStore
    faults: FaultPlan
    staging_dir: Path
    processor: Processor
    pushback: Pushback
    assets: dict[str, CompanyAssets] = field(default_factory=dict)

    def assets_of(self, company: Company) -> CompanyAssets:
        """The asset index of a company (built on first use)."""
        found = self.assets.get(company.handle)
        if found is None:
            number = company.handle.partition("|")[2] or company.handle
            found = CompanyAssets(
                self.settings.root / company.root_folder, number, company.overwrite_mode
            )
            self.assets[company.handle] = found
        return found
