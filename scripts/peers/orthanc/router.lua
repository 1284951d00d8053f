-- Orthanc 1.10 as the router under test: the simulator's default rules
-- (crates/simulator/rules/default.toml) in Lua, so the suite's routing, calling-AET
-- and data-validation tests can run against a router nobody here wrote.
--
-- Loaded by `scripts/peers/orthanc/start --router AE@HOST:PORT`, after
-- router-settings.lua, which sets ROUTER_DESTINATION: the DicomModalities entry every
-- route forwards to (the PACS the suite queries with C-FIND).
--
-- Flow, per received instance:
-- 1. ReceivedInstanceFilter picks the route by called AE title and runs the checks.
--    A failed check calls error(): Orthanc answers the C-STORE with 0xA700 and stores
--    nothing. A keep-first duplicate returns false: answered 0x0000, dropped.
-- 2. OnStoredInstance (after Orthanc has answered the C-STORE) runs the same checks
--    to get their fills and normalisations, then the morphing rules, makes the
--    changed copy with /instances/{id}/modify keeping every UID, and sends it to the
--    destination with store-straight. The router keeps the copy as received, so a
--    keep-first duplicate can be recognised later.
--
-- What Orthanc cannot express (the tests skip these, see pytest-parity.md):
-- - refusing an association: an unknown called AE title, or a calling AE title
--   outside a route's allow-list, is accepted and each C-STORE then fails (0xA700);
-- - the rules' own failure statuses (0xA900, 0xC000): every refusal is 0xA700;
-- - a duplicate warning status: duplicates answer 0x0000;
-- - delivery before the C-STORE response: forwarding runs after it, so the
--   destination must be polled;
-- - retrying a failed forward: Orthanc has no queue for store-straight; the failure is
--   logged and the instance stays on the router only.

local DESTINATION = ROUTER_DESTINATION or 'DESTINATION'

-- Helpers ---------------------------------------------------------------------------

-- The value of an element as text, trailing spaces dropped; nil when absent or empty.
local function text(t, name)
   local v = t[name]
   if type(v) ~= 'string' then
      return nil
   end
   v = v:gsub('[%s%z]+$', '')
   if v == '' then
      return nil
   end
   return v
end

local function days_in_month(year, month)
   if month == 2 then
      local leap = (year % 4 == 0 and year % 100 ~= 0) or year % 400 == 0
      return leap and 29 or 28
   elseif month == 4 or month == 6 or month == 9 or month == 11 then
      return 30
   end
   return 31
end

-- Whether s is a DA value YYYYMMDD naming a real day.
local function is_valid_date(s)
   if s == nil or not s:match('^%d%d%d%d%d%d%d%d$') then
      return false
   end
   local y, m, d = tonumber(s:sub(1, 4)), tonumber(s:sub(5, 6)), tonumber(s:sub(7, 8))
   return y > 0 and m >= 1 and m <= 12 and d >= 1 and d <= days_in_month(y, m)
end

-- A date one day ahead of UTC is still "today" in the easternmost hospitals, so
-- "future" starts after tomorrow UTC (as in the simulator).
local function tomorrow_utc()
   return os.date('!%Y%m%d', os.time() + 86400)
end

local function contains_ci(value, needle)
   return value ~= nil and value:lower():find(needle:lower(), 1, true) ~= nil
end

local function any_of(value, options)
   if value == nil then
      return false
   end
   for _, o in ipairs(options) do
      if value == o then
         return true
      end
   end
   return false
end

local function contains_any_ci(value, needles)
   for _, n in ipairs(needles) do
      if contains_ci(value, n) then
         return true
      end
   end
   return false
end

-- Checks ----------------------------------------------------------------------------
-- Each returns nil when the instance passes (possibly after changing t), or the
-- reason it is refused, prefixed with the status the rules give it.

local function blank_study_date_fill(fill_from, status)
   return function(t)
      if text(t, 'StudyDate') then
         return nil
      end
      for _, name in ipairs(fill_from) do
         local d = text(t, name)
         if is_valid_date(d) then
            t.StudyDate = d
            return nil
         end
      end
      return status .. ' StudyDate blank, no date to fill it from'
   end
end

local function blank_study_date_reject(status)
   return function(t)
      if text(t, 'StudyDate') then
         return nil
      end
      return status .. ' StudyDate is blank'
   end
end

local function accession_number(normalise, status)
   local max_length = 16
   local function fits(v)
      return #v <= max_length and v:match('^[A-Za-z0-9]+$') ~= nil
   end
   return function(t)
      local v = text(t, 'AccessionNumber')
      if v == nil then
         return status .. ' AccessionNumber is blank'
      end
      if fits(v) then
         return nil
      end
      if normalise then
         local fixed = v:gsub('[^A-Za-z0-9]', ''):sub(1, max_length)
         if fixed ~= '' and fits(fixed) then
            t.AccessionNumber = fixed
            return nil
         end
      end
      if #v > max_length then
         return status .. ' AccessionNumber too long (' .. #v .. ' > ' .. max_length .. ')'
      end
      return status .. " AccessionNumber '" .. v .. "' does not match"
   end
end

local function study_date_valid(status)
   return function(t)
      local d = text(t, 'StudyDate')
      if d == nil then
         return nil
      end
      if not is_valid_date(d) then
         return status .. " StudyDate '" .. d .. "' is not a date"
      end
      if d > tomorrow_utc() then
         return status .. ' StudyDate ' .. d .. ' is in the future'
      end
      return nil
   end
end

local function required(name, status)
   return function(t)
      if text(t, name) then
         return nil
      end
      return status .. ' ' .. name .. ' is missing'
   end
end

-- Morphing rules --------------------------------------------------------------------
-- Each takes the working copy t and returns true when it applied; a rule marked stop
-- ends the morphing when it applied.

local function set_study_description(value)
   return function(t)
      t.StudyDescription = value
   end
end

local GI = {
   name = 'HTM_GI',
   duplicates = 'keep_first',
   checks = {
      blank_study_date_fill({ 'SeriesDate', 'AcquisitionDate', 'ContentDate' }, '0xA900'),
      accession_number(true, '0xA900'),
      study_date_valid('0xA900'),
   },
   morphs = {
      { when = function() return true end,
        apply = function(t) t.InstitutionalDepartmentName = 'Gastroenterology' end },
      { when = function(t) return text(t, 'StationName') ~= nil end,
        apply = function(t) t.StationName = 'GI-' .. text(t, 'StationName') end },
      { when = function(t) return text(t, 'SeriesDescription') == nil and text(t, 'ProtocolName') ~= nil end,
        apply = function(t) t.SeriesDescription = text(t, 'ProtocolName') end },
      { when = function(t) return text(t, 'PatientComments') ~= nil end,
        apply = function(t) t.PatientComments = nil end },
      { when = function(t) return text(t, 'Modality') == 'ES' and contains_ci(text(t, 'SeriesDescription'), 'colon') end,
        apply = set_study_description('Endoscopy Colonoscopy'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'ES'
           and contains_any_ci(text(t, 'SeriesDescription'), { 'gastro', 'ogd', 'upper' }) end,
        apply = set_study_description('Endoscopy Upper GI (OGD)'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'ES' and contains_ci(text(t, 'SeriesDescription'), 'ERCP') end,
        apply = set_study_description('Endoscopy ERCP'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'ES' end,
        apply = set_study_description('Endoscopy General'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'XC' end,
        apply = set_study_description('GI Clinical Photography'), stop = true },
   },
}

-- '(?i)(autofluo|\bFAF\b)' of the rules: Lua patterns have no alternation and no \b,
-- the frontier pattern %f stands in for the word boundaries.
local function autofluorescence(v)
   if v == nil then
      return false
   end
   local lower = v:lower()
   return lower:find('autofluo', 1, true) ~= nil or lower:find('%f[%w]faf%f[%W]') ~= nil
end

local OPH = {
   name = 'HTM_OPH',
   -- Re-exported reports replace the earlier copy.
   duplicates = 'overwrite',
   checks = {
      blank_study_date_fill({ 'AcquisitionDate', 'ContentDate', 'SeriesDate' }, '0xA900'),
      accession_number(true, '0xA900'),
      study_date_valid('0xA900'),
   },
   morphs = {
      { when = function() return true end,
        apply = function(t) t.InstitutionalDepartmentName = 'Ophthalmology' end },
      { when = function(t) return any_of(text(t, 'Laterality'), { 'R', 'L' }) and text(t, 'SeriesDescription') ~= nil end,
        apply = function(t) t.SeriesDescription = text(t, 'SeriesDescription') .. ' (' .. text(t, 'Laterality') .. ')' end },
      { when = function(t) return text(t, 'Modality') == 'OPV' and (text(t, 'SeriesDescription') or ''):find('GPA', 1, true) ~= nil end,
        apply = set_study_description('Visual Fields (VF) GPA'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'OPV' end,
        apply = set_study_description('Visual Fields (VF)'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'OPT' and contains_ci(text(t, 'SeriesDescription'), 'macula') end,
        apply = set_study_description('OCT Macula'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'OPT'
           and contains_any_ci(text(t, 'SeriesDescription'), { 'rnfl', 'disc', 'optic' }) end,
        apply = set_study_description('OCT Optic Disc (RNFL)'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'OPT' end,
        apply = set_study_description('OCT'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'OP' and autofluorescence(text(t, 'SeriesDescription')) end,
        apply = set_study_description('Fundus Autofluorescence'), stop = true },
      { when = function(t) return text(t, 'Modality') == 'OP' end,
        apply = set_study_description('Fundus Photography'), stop = true },
   },
}

local function radiograph(t, parts)
   return any_of(text(t, 'Modality'), { 'DX', 'CR' }) and any_of(text(t, 'BodyPartExamined'), parts)
end

local ORTHO = {
   name = 'HTM_ORTHO',
   duplicates = 'keep_first',
   checks = {
      required('PatientID', '0xA900'),
      blank_study_date_reject('0xA900'),
      accession_number(false, '0xC000'),
      study_date_valid('0xA900'),
   },
   morphs = {
      { when = function() return true end,
        apply = function(t) t.InstitutionalDepartmentName = 'Orthopaedics' end },
      { when = function(t) return (text(t, 'PatientName') or ''):find('%^+$') ~= nil end,
        apply = function(t) t.PatientName = text(t, 'PatientName'):gsub('%^+$', '') end },
      { when = function(t) return radiograph(t, { 'KNEE' }) end,
        apply = set_study_description('XR Knee'), stop = true },
      { when = function(t) return radiograph(t, { 'HIP', 'PELVIS' }) end,
        apply = set_study_description('XR Hip/Pelvis'), stop = true },
      { when = function(t) return radiograph(t, { 'SHOULDER' }) end,
        apply = set_study_description('XR Shoulder'), stop = true },
      { when = function(t) return radiograph(t, { 'SPINE', 'CSPINE', 'TSPINE', 'LSPINE' }) end,
        apply = set_study_description('XR Spine'), stop = true },
      { when = function(t) return radiograph(t, { 'HAND', 'WRIST' }) end,
        apply = set_study_description('XR Hand/Wrist'), stop = true },
      { when = function(t) return radiograph(t, { 'FOOT', 'ANKLE' }) end,
        apply = set_study_description('XR Foot/Ankle'), stop = true },
      { when = function(t) return any_of(text(t, 'Modality'), { 'DX', 'CR' }) and text(t, 'BodyPartExamined') ~= nil end,
        apply = function(t) t.StudyDescription = 'XR ' .. text(t, 'BodyPartExamined') end, stop = true },
      { when = function(t) return any_of(text(t, 'Modality'), { 'DX', 'CR' }) end,
        apply = set_study_description('XR Unspecified'), stop = true },
   },
}

local ROUTES = {
   ['LB-HTM-GI'] = GI,
   ['LB-HTM-OPH'] = OPH,
   ['LB-HTM-ORTHO'] = ORTHO,
}

-- Every element a check or a morph may change: the changed copy is the difference on
-- these.
local TOUCHED = {
   'StudyDate', 'AccessionNumber', 'InstitutionalDepartmentName', 'StationName',
   'SeriesDescription', 'PatientComments', 'StudyDescription', 'PatientName',
}

-- Runs the checks then the morphs on a copy of tags; returns the copy, or nil and the
-- reason the instance is refused.
local function process(route, tags)
   local t = {}
   for k, v in pairs(tags) do
      t[k] = v
   end
   for _, check in ipairs(route.checks) do
      local refused = check(t)
      if refused then
         return nil, refused
      end
   end
   for _, rule in ipairs(route.morphs) do
      if rule.when(t) then
         rule.apply(t)
         if rule.stop then
            break
         end
      end
   end
   return t
end

local function route_for(origin)
   return ROUTES[origin.CalledAet or '']
end

-- Orthanc callbacks -----------------------------------------------------------------

function ReceivedInstanceFilter(dicom, origin, info)
   if origin.RequestOrigin ~= 'DicomProtocol' then
      return true
   end
   local route = route_for(origin)
   if route == nil then
      error('no route for called AE title ' .. tostring(origin.CalledAet))
   end
   local _, refused = process(route, dicom)
   if refused then
      error(route.name .. ': ' .. refused)
   end
   if route.duplicates == 'keep_first' then
      local found = ParseJson(RestApiPost('/tools/lookup', dicom.SOPInstanceUID or ''))
      for _, resource in ipairs(found or {}) do
         if resource.Type == 'Instance' then
            print(route.name .. ': duplicate ' .. dicom.SOPInstanceUID .. ' dropped, first copy kept')
            return false
         end
      end
   end
   return true
end

function OnStoredInstance(instanceId, tags, metadata, origin)
   if origin.RequestOrigin ~= 'DicomProtocol' then
      return
   end
   local route = route_for(origin)
   if route == nil then
      return
   end
   local t, refused = process(route, tags)
   if t == nil then
      -- The filter refused these already; only a rule change between the two could
      -- get here.
      print(route.name .. ': ' .. instanceId .. ' not forwarded: ' .. refused)
      return
   end
   local replace, remove = {}, {}
   local changed = false
   for _, name in ipairs(TOUCHED) do
      local before, after = text(tags, name), text(t, name)
      if after == nil and before ~= nil then
         table.insert(remove, name)
         changed = true
      elseif after ~= nil and after ~= before then
         replace[name] = after
         changed = true
      end
   end
   local body
   if changed then
      local request = {
         Replace = replace,
         Remove = remove,
         -- Orthanc's modify makes new UIDs unless told to keep them: the destination
         -- must see the instance the sender sent.
         Keep = { 'StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID' },
         Force = true,
      }
      if next(replace) == nil then
         request.Replace = nil
      end
      if #remove == 0 then
         request.Remove = nil
      end
      body = RestApiPost('/instances/' .. instanceId .. '/modify', DumpJson(request, true))
   else
      body = RestApiGet('/instances/' .. instanceId .. '/file')
   end
   if body == nil then
      print(route.name .. ': ' .. instanceId .. ' could not be changed; not forwarded')
      return
   end
   local sent = RestApiPost('/modalities/' .. DESTINATION .. '/store-straight', body)
   if sent == nil then
      print(route.name .. ': ' .. instanceId .. ' could not be forwarded to ' .. DESTINATION)
   end
end
