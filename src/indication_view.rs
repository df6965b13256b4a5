//! The providers' instances as the indication generator sees the model: the same functions
//! that answer GetInstance build SourceInstance and PreviousInstance.

use std::time::Duration;

use indications::{ModelView, SystemView};
use providers::{jobs, settings, system};
use wbem::cim::Instance;
use xenapi::datamodel::class;
use xenapi::db::Data;

pub struct ProvidersView {
    pub task_retention: Duration,
}

impl ModelView for ProvidersView {
    fn system(&self, data: &Data, vm_ref: &str) -> Option<SystemView> {
        let row = data.row(class::VM, vm_ref).filter(|r| system::is_system(r))?;
        let settings = settings::rasd_devs(data, row).iter().filter_map(|dev| settings::rasd_instance(data, row, dev)).collect();
        Some(SystemView { system: system::cs_instance(data, row), settings })
    }

    fn job(&self, data: &Data, task_ref: &str) -> Option<Instance> {
        data.row(class::task, task_ref).map(|t| jobs::job_instance(data, t, self.task_retention))
    }
}
